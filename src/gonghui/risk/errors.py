from enum import StrEnum


class RiskError(StrEnum):
    CHALLENGE_REQUIRED = "risk.challenge_required"
    CHALLENGE_WRONG = "risk.challenge_wrong"
    CHALLENGE_EXPIRED = "risk.challenge_expired"
    CHALLENGE_INVALID = "risk.challenge_invalid"
    TOO_FAST = "risk.too_fast"
    CHALLENGE_RENDERS = "risk.challenge_renders"
    BAD_DEVICE_ID = "risk.bad_device_id"
    FLAG_NOT_FOUND = "risk_flag.not_found"
    FLAG_REVIEWED = "risk.flag_reviewed"
