from enum import StrEnum


class MerchantsError(StrEnum):
    NOT_CASHIER = "merchants.not_cashier"
    CODE_INVALID = "merchants.code_invalid"
    CODE_EXPIRED = "merchants.code_expired"
    NOT_ACCEPTED = "merchants.voucher_not_accepted"
    BAD_PERIOD = "merchants.bad_period"
    RATE_LIMITED = "merchants.rate_limited"
