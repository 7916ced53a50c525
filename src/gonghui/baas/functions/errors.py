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
