from enum import StrEnum


class MembersError(StrEnum):
    INVALID_ROW = "members.invalid_row"
    NOT_IN_ROSTER = "members.not_in_roster"
    NAME_MISMATCH = "members.name_mismatch"
    ALREADY_VERIFIED = "members.already_verified"
    CLAIMED_BY_OTHER = "members.roster_entry_claimed"
    ROSTER_ENTRY_NOT_FOUND = "members.roster_entry_not_found"
