from enum import StrEnum


class OrgsError(StrEnum):
    NOT_FOUND = "org.not_found"
    CODE_UNKNOWN = "org.code_unknown"
    CODE_TAKEN = "orgs.code_taken"
    BAD_LEVEL = "orgs.level_not_below_parent"
    MOVE_INTO_SUBTREE = "orgs.move_into_own_subtree"
    ARCHIVED = "orgs.archived"
    HAS_ACTIVE_CHILDREN = "orgs.has_active_children"
    ROOT_EXISTS = "orgs.root_requires_platform_admin"
    ROLE_EXISTS = "orgs.role_already_granted"
    ROLE_NOT_FOUND = "orgs.role_not_found"
    USER_NOT_FOUND = "orgs.user_not_found"
    ROLE_BEYOND_OWN = "orgs.role_beyond_own_rights"
