from enum import StrEnum


class IntegrationsError(StrEnum):
    SMS_REJECTED = "sms.rejected"
    SMS_UNAVAILABLE = "sms.unavailable"
    WECHAT_CODE_INVALID = "wechat.code_invalid"
    WECHAT_CODE_USED = "wechat.code_used"
    WECHAT_USER_REFUSED = "wechat.user_refused"
    WECHAT_RATE_LIMITED = "wechat.rate_limited"
    WECHAT_CREDENTIALS = "wechat.bad_app_credentials"
    WECHAT_FAILED = "wechat.failed"
    WECHAT_NOT_SUBSCRIBED = "wechat.not_subscribed"
    WECHAT_NOT_FOLLOWING = "wechat.not_following"
    WECHAT_UNAVAILABLE = "wechat.unavailable"
    WECHATPAY_REFUSED = "wechatpay.refused"
    WECHATPAY_UNAVAILABLE = "wechatpay.unavailable"
    WECHATPAY_NOT_CONFIGURED = "wechatpay.not_configured"
    WECHATPAY_BAD_SIGNATURE = "wechatpay.bad_signature"
