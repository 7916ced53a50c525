from enum import StrEnum


class FunctionsError(StrEnum):
    NOT_FOUND = "functions.not_found"
    VERSION_NOT_FOUND = "functions.version_not_found"
    BAD_SOURCE = "functions.bad_source"
    BAD_NAME = "functions.bad_name"
    BAD_LIMITS = "functions.bad_limits"
    FAILED = "functions.failed"
    TIMEOUT = "functions.timeout"
    BUSY = "functions.busy"
    CALL_DEPTH = "functions.call_depth"
    UNKNOWN_OP = "functions.unknown_sdk_call"
    SERVER_ONLY = "functions.server_rights_required"
    MEMBER_NOT_FOUND = "functions.member_not_found"
    ACTIVITY_NOT_FOUND = "functions.activity_not_found"
    NO_POINTS_BUDGET = "functions.no_points_budget"
    BUDGET_EXHAUSTED = "functions.budget_exhausted"
    BAD_CALL = "functions.bad_sdk_call"
    NOT_IN_GALLERY = "functions.not_in_gallery"
    HOST_NOT_ALLOWED = "functions.host_not_allowed"
    HTTP_FAILED = "functions.http_failed"
