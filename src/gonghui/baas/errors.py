from enum import StrEnum


class BaasError(StrEnum):
    APP_NOT_FOUND = "app.not_found"
    APP_NAME_TAKEN = "baas.app_name_taken"
    KEY_INVALID = "baas.app_key_invalid"
    KEY_REQUIRED = "baas.app_key_required"
    TABLE_NOT_FOUND = "baas.table_not_found"
    TABLE_NAME_TAKEN = "baas.table_name_taken"
    FIELD_NOT_FOUND = "baas.field_not_found"
    FIELD_NAME_TAKEN = "baas.field_name_taken"
    BAD_NAME = "baas.bad_name"
    BAD_FIELD = "baas.bad_field"
    BAD_TYPE_CHANGE = "baas.type_change_not_safe"
    CONFIRM_REQUIRED = "baas.destructive_change_needs_confirm"
    UNIQUE_VIOLATION = "baas.unique_violation"
    RECORD_NOT_FOUND = "baas.record_not_found"
    INVALID_RECORD = "baas.invalid_record"
    INVALID_QUERY = "baas.invalid_query"
    INVALID_UPDATE = "baas.invalid_update"
    FORBIDDEN = "baas.forbidden"
    BAD_PERMISSIONS = "baas.bad_permissions"
    BAD_TEMPLATE = "baas.bad_template"
