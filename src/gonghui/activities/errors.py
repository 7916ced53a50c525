from enum import StrEnum


class ActivitiesError(StrEnum):
    NOT_FOUND = "activity.not_found"
    BAD_STATE = "activities.bad_state"
    BAD_WINDOW = "activities.bad_window"
    FIELD_LOCKED = "activities.field_locked"
    BAD_CONFIG = "activities.bad_config"
    NOT_LIVE = "activities.not_live"
    NOT_ELIGIBLE = "activities.not_eligible"
    LIMIT_TOTAL = "activities.limit_total_reached"
    LIMIT_DAY = "activities.limit_per_day_reached"
