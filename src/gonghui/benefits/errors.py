from enum import StrEnum


class BenefitsError(StrEnum):
    BUDGET_EXHAUSTED = "benefits.budget_exhausted"
    VOUCHER_NOT_FOUND = "voucher.not_found"
    VOUCHER_NOT_REDEEMABLE = "benefits.voucher_not_redeemable"
    VOUCHER_NOT_VALID = "benefits.voucher_not_valid"
    BELOW_THRESHOLD = "benefits.below_threshold"
    PRIZE_NOT_FOUND = "prize.not_found"
    ADDRESS_CLOSED = "benefits.address_deadline_passed"
    NOT_SHIPPABLE = "benefits.prize_not_shippable"
