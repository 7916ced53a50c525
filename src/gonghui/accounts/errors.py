from enum import StrEnum


class AccountsError(StrEnum):
    INVALID_CREDENTIALS = "accounts.invalid_credentials"
    USERNAME_TAKEN = "accounts.username_taken"
    WEAK_PASSWORD = "accounts.weak_password"
    TOKEN_INVALID = "accounts.token_invalid"
    TOKEN_EXPIRED = "accounts.token_expired"
    REFRESH_REUSED = "accounts.refresh_token_reused"
    SESSION_REVOKED = "accounts.session_revoked"
    USER_DISABLED = "accounts.user_disabled"
    NOT_STAFF = "accounts.not_staff"
    NOT_MEMBER = "accounts.not_verified_member"
    OTP_INVALID = "accounts.otp_invalid"
    OTP_EXPIRED = "accounts.otp_expired"
    OTP_LOCKED = "accounts.otp_locked"
    OTP_COOLDOWN = "accounts.otp_resend_cooldown"
    OTP_PHONE_THROTTLED = "accounts.otp_phone_throttled"
    OTP_IP_THROTTLED = "accounts.otp_ip_throttled"
    PHONE_INVALID = "accounts.phone_invalid"
    WECHAT_FAILED = "accounts.wechat_failed"
    PHONE_TAKEN = "accounts.phone_taken"
