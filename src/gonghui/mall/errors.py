from enum import StrEnum


class MallError(StrEnum):
    # Not-found codes as tenancy's get_scoped names them (after the table).
    PRODUCT_NOT_FOUND = "product.not_found"
    SKU_NOT_FOUND = "sku.not_found"
    ORDER_NOT_FOUND = "order.not_found"
    IMAGE_NOT_FOUND = "mall.image_not_found"
    BAD_IMAGE = "mall.bad_image"
    EMPTY_ORDER = "mall.empty_order"
    ONE_SELLER = "mall.one_seller_per_order"
    OFF_SHELF = "mall.off_shelf"
    OUT_OF_STOCK = "mall.out_of_stock"
    NOT_A_SALE = "mall.not_a_mall_sale"
    BAD_STATE = "mall.bad_state"
    WECHAT_NOT_LINKED = "mall.wechat_not_linked"
    PAID_ALREADY = "mall.paid_already"
    TRY_AGAIN = "mall.try_again"
    VOUCHER_UNUSABLE = "mall.voucher_unusable"
    # An abnormal refund is applied to a bank card, never sent again (that refunds twice).
    REFUND_ABNORMAL = "mall.refund_abnormal"
    BANK_CARD = "mall.bank_card_needed"
