from enum import StrEnum


class TriggersError(StrEnum):
    NOT_FOUND = "triggers.not_found"
    BAD_TRIGGER = "triggers.invalid"
    BAD_CRON = "triggers.bad_cron"
    BAD_URL = "triggers.bad_url"
    DELIVERY_NOT_FOUND = "triggers.delivery_not_found"
    BAD_SIGNATURE = "triggers.bad_signature"
    STALE_TIMESTAMP = "triggers.stale_timestamp"
