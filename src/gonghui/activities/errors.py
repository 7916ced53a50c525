from enum import StrEnum


class ActivitiesError(StrEnum):
    NOT_FOUND = "activity.not_found"
    BAD_STATE = "activities.bad_state"
    BAD_WINDOW = "activities.bad_window"
    FIELD_LOCKED = "activities.field_locked"
    BAD_CONFIG = "activities.bad_config"
    MERCHANT_NOT_OPEN = "activities.merchant_not_open"
    NOT_LIVE = "activities.not_live"
    NOT_ELIGIBLE = "activities.not_eligible"
    LIMIT_TOTAL = "activities.limit_total_reached"
    LIMIT_DAY = "activities.limit_per_day_reached"
    STOCK_NOT_FOUND = "vouchers.stock_not_found"
    STOCK_EMPTY = "vouchers.stock_empty"
    STOCK_NOT_OPEN = "vouchers.stock_not_open"
    STOCK_LIMIT = "vouchers.member_limit_reached"
    WECHAT_NOT_LINKED = "vouchers.wechat_not_linked"
    STOCK_PAUSED = "vouchers.stock_paused"
    STOCK_BAD_STATE = "vouchers.stock_bad_state"
    ORG_LIMIT = "vouchers.org_limit_reached"
    WECHATPAY_REFUSED = "vouchers.wechatpay_refused"
    WECHATPAY_UNAVAILABLE = "vouchers.wechatpay_unavailable"
