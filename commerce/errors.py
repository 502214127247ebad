"""Machine-readable codes of the refusals in commerce/ (messages are Simplified Chinese)."""

from __future__ import annotations

from enum import StrEnum


class ChannelErrorCode(StrEnum):
    INVALID_DEALER = "invalid_dealer"  # a field of a dealer is missing or malformed
    DEALER_CODE_TAKEN = "dealer_code_taken"
    DEALER_NOT_FOUND = "dealer_not_found"
    UNKNOWN_DEALER = "unknown_dealer"  # named in a request body
    DEALER_SUSPENDED = "dealer_suspended"
    DEALER_IN_USE = "dealer_in_use"
    PARENT_REQUIRED = "parent_dealer_required"
    PARENT_NOT_ALLOWED = "parent_dealer_not_allowed"
    UNKNOWN_PARENT = "unknown_parent_dealer"
    PARENT_IS_SECOND_LEVEL = "parent_dealer_is_second_level"
    PARENT_SUSPENDED = "parent_dealer_suspended"
    HAS_SUB_DEALERS = "dealer_has_sub_dealers"
    UNKNOWN_REGION = "unknown_region"
    OVERLAPPING_AREAS = "overlapping_areas"
    TOO_MANY_AREAS = "too_many_areas"
    AREA_OUTSIDE_PARENT = "area_outside_parent_dealer"
    AREAS_EXCLUDE_DEPENDENTS = "areas_exclude_stores_or_sub_dealers"
    INVALID_STORE = "invalid_store"
    STORE_CODE_TAKEN = "store_code_taken"
    STORE_NOT_FOUND = "store_not_found"
    UNKNOWN_STORE = "unknown_store"
    STORE_SUSPENDED = "store_suspended"
    STORE_IN_USE = "store_in_use"
    STORE_REGION_TOO_COARSE = "store_region_too_coarse"
    STORE_OUTSIDE_DEALER_AREA = "store_outside_dealer_area"
    STORE_QUOTA = "store_quota_exceeded"
    INVALID_PHONE = "invalid_phone"
    INVALID_CHANNEL_ROLE = "invalid_channel_role"
    EMPLOYER_MISMATCH = "channel_staff_employer_mismatch"
    INVALID_USERNAME = "invalid_username"
    USERNAME_TAKEN = "username_taken"
    PHONE_TAKEN = "phone_taken"
    INVALID_PASSWORD = "invalid_password"  # noqa: S105 (an error code)
    STAFF_NOT_FOUND = "channel_staff_not_found"


class MemberErrorCode(StrEnum):
    NO_BRAND = "no_brand"
    MEMBER_NOT_FOUND = "member_not_found"
    MEMBER_ERASED = "member_erased"
    INVALID_PHONE = "invalid_phone"
    INVALID_CONSENT = "invalid_consent"
    INVALID_IDENTITY = "invalid_identity"


class PointsErrorCode(StrEnum):
    INVALID_AMOUNT = "invalid_points_amount"
    INVALID_SOURCE = "invalid_points_source"
    INSUFFICIENT = "insufficient_points"
    SOURCE_REUSED = "points_source_reused"  # the same source with a different amount or kind


class DistributionErrorCode(StrEnum):
    DISABLED = "distribution_disabled"
    ALREADY_AFFILIATE = "already_affiliate"
    NOT_AFFILIATE = "not_affiliate"
    AFFILIATE_WRONG_STATE = "affiliate_wrong_state"
    INVALID_LINK = "invalid_affiliate_link"
    SELF_BINDING = "self_binding"
    AFFILIATE_INACTIVE = "affiliate_inactive"
    ALREADY_BOUND = "already_bound"
    ORDER_WRONG_STATE = "commission_order_wrong_state"
    INVALID_AMOUNT = "invalid_withdrawal_amount"
    BELOW_MINIMUM = "withdrawal_below_minimum"
    INSUFFICIENT = "insufficient_commission"
    WITHDRAWAL_OPEN = "withdrawal_in_progress"
    WITHDRAWAL_WRONG_STATE = "withdrawal_wrong_state"
    NO_OPENID = "affiliate_without_openid"


class StockErrorCode(StrEnum):
    INVALID_QUANTITY = "invalid_stock_quantity"
    INSUFFICIENT = "insufficient_stock"  # 库存不足 (409)
    NOT_HELD = "stock_not_held"  # a release or shipment of more than is reserved (409)
    BELOW_RESERVED = "stock_below_reserved"  # on_hand may not drop under what orders hold (409)
    SKU_NOT_FOUND = "sku_not_found"


class CouponErrorCode(StrEnum):
    TEMPLATE_NOT_FOUND = "coupon_template_not_found"
    TEMPLATE_NOT_ACTIVE = "coupon_template_not_active"  # draft or stopped (409)
    NOT_CLAIMABLE = "coupon_not_claimable"  # only staff hand it out
    CLAIM_WINDOW = "coupon_claim_window_closed"  # (409)
    SOLD_OUT = "coupon_sold_out"  # issued reached total_quantity (409)
    MEMBER_LIMIT = "coupon_member_limit"  # per_member_limit reached (409)
    TEMPLATE_EXPIRED = "coupon_template_expired"  # fixed validity already over (409)
    NOT_FOUND = "coupon_not_found"
    UNAVAILABLE = "coupon_unavailable"  # not available (reserved, used, expired, revoked) (409)
    EXPIRED = "coupon_expired"  # (409)
    NOT_YET_VALID = "coupon_not_yet_valid"  # (409)
    NOT_APPLICABLE = "coupon_not_applicable"  # no line in scope, or not a normal order
    BELOW_THRESHOLD = "coupon_below_threshold"
    WRONG_STATE = "coupon_wrong_state"  # a transition from a state that does not allow it (409)


class MemberLevelErrorCode(StrEnum):
    LEVEL_NOT_FOUND = "member_level_not_found"
    TAG_NOT_FOUND = "member_tag_not_found"
    TAG_IS_RULE = "member_tag_is_rule"  # rule tags follow their rule, not staff
    INVALID_RULE = "member_tag_invalid_rule"
    ADDRESS_NOT_FOUND = "address_not_found"
    INVALID_ADDRESS = "invalid_address"
    TOO_MANY_ADDRESSES = "too_many_addresses"


class OrderErrorCode(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    WRONG_STATE = "order_wrong_state"  # the transition is not allowed from the order's state (409)
    EMPTY = "order_empty"
    INVALID_LINE = "invalid_order_line"
    INVALID_QUANTITY = "invalid_order_quantity"
    TOO_MANY_LINES = "too_many_order_lines"
    SKU_NOT_SELLABLE = "sku_not_sellable"
    INVALID_DELIVERY = "invalid_delivery"
    ADDRESS_REQUIRED = "address_required"
    STORE_REQUIRED = "pickup_store_required"
    STORE_NOT_AVAILABLE = "pickup_store_not_available"
    MIXED_MALL_LINES = "mixed_mall_lines"  # points-mall goods are checked out on their own
    MALL_ITEM_NOT_AVAILABLE = "mall_item_not_available"
    MALL_SOLD_OUT = "mall_item_sold_out"  # (409)
    MALL_MEMBER_LIMIT = "mall_item_member_limit"  # (409)
    INVALID_CLIENT_TOKEN = "invalid_client_token"  # noqa: S105 (an error code)
    NOT_YOUR_ORDER = "not_your_order"
    AFTER_SALE_OPEN = "order_after_sale_open"  # not shipped / completed while an after-sale is open (409)
    INVALID_SHIPMENT = "invalid_shipment"
    PICKUP_CODE_INVALID = "pickup_code_invalid"
    WRONG_STORE = "pickup_wrong_store"  # (403)
    INVALID_REASON = "invalid_cancel_reason"
    CART_FULL = "cart_full"


class PaymentErrorCode(StrEnum):
    ORDER_NOT_PAYABLE = "order_not_payable"  # not pending payment, nothing to pay, or past pay_by
    ORDER_ALREADY_PAID = "order_already_paid"
    NO_OPENID = "payer_openid_required"
    WECHAT_UNAVAILABLE = "wechat_pay_unavailable"  # WeChat could not be reached: try again
    WECHAT_REFUSED = "wechat_pay_refused"


class RefundErrorCode(StrEnum):
    INVALID_AMOUNT = "invalid_refund_amount"
    NOT_PAID = "refund_order_not_paid"
    EXCEEDS_PAID = "refund_exceeds_paid"  # beyond what the order (or a line) has left to refund
    UNKNOWN_LINE = "refund_unknown_line"
    TOO_MANY = "too_many_refunds"


class AfterSaleErrorCode(StrEnum):
    NOT_ALLOWED = "after_sale_not_allowed"  # the order's state or after_sales_until forbids it
    ALREADY_OPEN = "after_sale_already_open"
    INVALID_LINES = "after_sale_invalid_lines"
    INVALID_TRACKING = "after_sale_invalid_tracking"
    WRONG_STATE = "after_sale_wrong_state"  # an illegal transition (409): nothing changed
    NOT_YOURS = "after_sale_not_yours"
    TOO_MANY = "too_many_after_sales"


class GroupBuyErrorCode(StrEnum):
    CAMPAIGN_NOT_FOUND = "group_buy_campaign_not_found"
    CAMPAIGN_NOT_ACTIVE = "group_buy_campaign_not_active"  # off, or outside its window (409)
    TEAM_NOT_FOUND = "group_buy_team_not_found"
    TEAM_NOT_JOINABLE = "group_buy_team_not_joinable"  # not open, expired or full (409)
    ALREADY_IN_TEAM = "group_buy_already_in_team"  # (409)
    MEMBER_LIMIT = "group_buy_member_limit"  # (409)
    SOLD_OUT = "group_buy_sold_out"  # the campaign's quantity is taken (409)
    INVALID_QUANTITY = "group_buy_invalid_quantity"


class BargainErrorCode(StrEnum):
    CAMPAIGN_NOT_FOUND = "bargain_campaign_not_found"
    CAMPAIGN_NOT_ACTIVE = "bargain_campaign_not_active"  # (409)
    SESSION_NOT_FOUND = "bargain_session_not_found"
    SESSION_NOT_ACTIVE = "bargain_session_not_active"  # ordered or expired (409)
    MEMBER_LIMIT = "bargain_member_limit"  # (409)
    HELPER_LIMIT = "bargain_helper_limit"  # (409)
    ALREADY_HELPED = "bargain_already_helped"  # (409)
    OWN_SESSION = "bargain_own_session"  # a member cannot help their own bargain
    AT_FLOOR = "bargain_at_floor"  # nothing left to cut (409)
    NOT_AT_FLOOR = "bargain_not_at_floor"  # the campaign sells only at the floor (409)
    SOLD_OUT = "bargain_sold_out"  # (409)
