from enum import StrEnum


class VoteError(StrEnum):
    CANDIDATE_NOT_FOUND = "vote.candidate_not_found"
    BAD_CATEGORY = "vote.bad_category"
    BAD_FILE = "vote.bad_file"
    NOT_NOMINATING = "vote.not_nominating"
    BAD_STATE = "vote.bad_state"
    REASON_REQUIRED = "vote.reason_required"
    HAS_VOTES = "vote.candidate_has_votes"
    LIMIT_DAY = "vote.limit_per_day_reached"
    LIMIT_CANDIDATE = "vote.limit_per_candidate_reached"
    LIMIT_TOTAL = "vote.limit_total_reached"
    FROZEN = "vote.frozen"
    NOT_ENDED = "vote.not_ended"
    NOT_PUBLISHED = "vote.not_published"
    VOTE_NOT_FOUND = "vote.vote_not_found"
    ALREADY_VOID = "vote.already_void"
    COUNTS_MISMATCH = "vote.counts_mismatch"
