from enum import StrEnum


class MembersError(StrEnum):
    INVALID_ROW = "members.invalid_row"
    NOT_IN_ROSTER = "members.not_in_roster"
    NAME_MISMATCH = "members.name_mismatch"
    ALREADY_VERIFIED = "members.already_verified"
    CLAIMED_BY_OTHER = "members.roster_entry_claimed"
    ROSTER_ENTRY_NOT_FOUND = "members.roster_entry_not_found"
    ON_OTHER_ROSTER = "members.on_other_roster"
    REVIEW_PENDING = "members.review_already_pending"
    REVIEW_DECIDED = "members.review_already_decided"
    PROOF_NOT_IMAGE = "members.proof_not_an_image"
    PROOF_TOO_LARGE = "members.proof_too_large"
    UPLOAD_TOO_LARGE = "members.upload_too_large"
    REPORT_NOT_READY = "members.error_report_not_ready"
    TRANSFER_SAME_ORG = "members.transfer_same_org"
    ORG_ARCHIVED = "members.org_archived"
    BAD_CURSOR = "members.bad_cursor"
    REVIEW_NOT_NEEDED = "members.review_not_needed"
    VERIFY_THROTTLED = "members.verification_throttled"
