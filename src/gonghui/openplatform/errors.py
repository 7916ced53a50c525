from enum import StrEnum


class OpenPlatformError(StrEnum):
    CLIENT_NOT_FOUND = "client.not_found"
    BAD_REDIRECT_URI = "openplatform.bad_redirect_uri"
    BAD_SCOPE = "openplatform.bad_scope"
    PUBLIC_CLIENT = "openplatform.public_client_has_no_secret"
    TOKEN_INVALID = "openplatform.token_invalid"
    SCOPE_MISSING = "openplatform.insufficient_scope"
    NOT_A_MEMBER_TOKEN = "openplatform.member_token_required"
    RATE_LIMITED = "openplatform.too_many_calls"
    BAD_WEBHOOK = "openplatform.bad_webhook"
    WEBHOOK_NOT_FOUND = "openplatform.webhook_not_found"
    DELIVERY_NOT_FOUND = "openplatform.delivery_not_found"
    SERVICE_NOT_FOUND = "openplatform.service_not_found"
    BAD_SERVICE = "openplatform.bad_service"
    BAD_ICON = "openplatform.bad_icon"
    APPROVER_LACKS_RIGHT = "openplatform.approver_lacks_right"
    SCOPE_NOT_ASKED = "openplatform.scope_not_asked"
    APPROVAL_NOT_FOUND = "openplatform.approval_not_found"
    APPROVAL_LAPSED = "openplatform.approval_lapsed"
