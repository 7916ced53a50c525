from enum import StrEnum


class OperationsError(StrEnum):
    NOT_PLATFORM_ADMIN = "ops.not_platform_admin"
    TASK_NOT_FOUND = "ops.task_not_found"
    TASK_NOT_DEAD = "ops.task_not_dead"
