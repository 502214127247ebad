"""The shared commerce core's data: catalog and stock, the sales channel, members (levels, tags,
addresses, points), orders (cart, order, lines, events, shipments, after-sales), payments and refunds,
coupons, the points mall, group buy, bargaining and distribution.

One module per topic (catalog, channel, members, orders, payments, coupons, mall, group_buy, bargain,
distribution); every model is re-exported here, so `from commerce.models import X` is the one import.
The services in commerce/services/ are the only writers. This note is their contract.

Money is integer fen (BigIntegerField), points integers, rates basis points (10000 = 100 %), times
UTC. Rounding: member-level price = (price_fen × price_percent + 50) // 100 (half up); a percent-off
coupon's discount = min(eligible × percent_off // 100, max_discount_fen or ∞) (down); commission =
paid_fen × rate_bp // 10000 (down); a refund's commission reversal = accrued × refunded / paid_fen
(down, and the last refund of a line reverses whatever is left).

What the database holds (each has a test in tests/commerce/test_core_models.py)
------------------------------------------------------------------------------
Catalog and stock
- prices >= 0; one member price per (SKU, level); category names unique per parent, no self-parent.
- Stock: on_hand >= 0, 0 <= reserved <= on_hand (so available = on_hand - reserved >= 0: no oversell
  even if a service forgets its guard). StockMovement once per (sku, kind, source), deltas match kind.
Members
- one default address per member; region codes 6 digits; phone and postal code formats.
- a level sets at least one threshold; price_percent 1..100; a tag once per member; rule tags have a
  rule, manual tags none.
Orders
- unique number (20 digits); at most one order per (member, client_token) — checkout is idempotent.
- amounts >= 0, discount <= items, total_fen = items_fen - discount_fen + shipping_fen;
  refunded <= refund_booked <= total (cash and points); refunds only of paid orders; refund_status
  agrees with refunded_fen/refunded_points (none = 0, full = totals, partial in between); a discount
  needs a coupon; a points-mall order costs points.
- the three states agree: pending_payment ⇔ unpaid (and has pay_by); every state after payment ⇒
  paid (with paid_at); closed ⇒ cancelled; cancelled has cancelled_at and a reason; awaiting_group
  only for group buys; shipped has shipped_at and auto_receive_at; received/completed have
  received_at and after_sales_until; completed has completed_at; awaiting_shipment/shipped only for
  express, awaiting_pickup only for pickup; express orders carry a full address (6-digit region),
  pickup orders a store and a 12-digit pickup code (unique).
- affiliate_l2 only with a different affiliate_l1.
- OrderLine once per (order, sku); subtotal = unit × quantity, points_subtotal = unit_points ×
  quantity, 0 <= discount <= subtotal, paid = subtotal - discount; refund_quantity <= quantity,
  refund_fen <= paid_fen, refund_points <= points_subtotal; commission rates >= 0 and l1 + l2 <=
  10000; a points-mall price ⇔ a mall item.
- OrderEvent: a state change names the field and two different states; other events none.
- at most one open after-sale per order; return steps only for return_refund; Shipment once per
  (order, carrier, tracking no), tracking-number format.
Payments and refunds
- PayNotification once per WeChat event id.
- Payment: out_trade_no unique (order number + P + 2 digits), amount > 0, at most one `paid` payment
  per order, transaction_id unique when set, paid/surplus ⇒ transaction_id and paid_at.
- Refund: refund_no unique (order number + R + 2 digits), amount/points >= 0 and not both 0, cash ⇔
  a payment, reason after_sale ⇔ an after-sale (one refund per after-sale), at most one group_failed
  refund per order and one surplus refund per payment, provider refund id unique when set.
Coupons
- template: amount-off has an amount, percent-off 1..99 %; fixed or relative validity, not both;
  issued <= total_quantity; per_member_limit >= 1.
- member coupon: unique code; (template, member, seq) unique and seq >= 1; (member, source) unique
  when source is set; status ⇔ order (reserved/used have one, the others none).
Points mall, group buy, bargain
- mall item: points_price > 0, cash >= 0, sold <= quantity, delivery or pickup allowed.
- group-buy campaign: price > 0, team size 2..100, sold <= quantity. Team: 0 <= seats_paid <=
  seats_taken <= size; open ⇒ expires_at; succeeded ⇒ seats_paid = size. Seat: one live seat per
  (team, member) (released seats do not count), one leader per team, one seat per order.
- bargain: floor <= current <= start, floor < start; helps_count <= max_helps and the last help
  reaches the floor; one help per (session, helper), cut > 0; one active session per (campaign,
  member); ordered ⇔ an order.
Distribution
- policy levels 1 or 2; rates l1 + l2 <= 10000. Affiliate parent created earlier (no cycles).
- CommissionEntry: amount > 0; level 1 or 2 exactly when it names an order line (no third level);
  accrue/freeze/settle once per (line, level); kind fixes the from/to states and which of line,
  refund, withdrawal it names; once per (affiliate, source).
- at most one open withdrawal per affiliate; amount > 0.

What the services hold (under row locks, in this lock order)
-----------------------------------------------------------
Lock order, for every transaction that locks more than one row (each step optional, never
backwards):
  1. the buyer's Member row (points debit/credit lock it too; it serialises per-member limits:
     coupon per-member counts, mall per_member_limit, campaign member_limit);
  2. activity rows: GroupBuyTeam, BargainSession, then counters (GroupBuyCampaign / BargainCampaign /
     MallItem `sold`, CouponTemplate `issued`) by guarded UPDATE;
  3. Order rows, ascending id (a team's success or failure locks its seats' orders in id order);
  4. that order's Payment / Refund / AfterSale rows;
  5. MemberCoupon;
  6. Stock rows, ascending sku id (guarded UPDATEs ordered by sku id count as locks);
  7. Affiliate rows (withdrawals).
Work that would lock backwards runs in its own transaction afterwards (e.g. the member's level is
recomputed after payment in a transaction on_commit). Every top-level service is
transaction.atomic(durable=True); tasks and WeChat calls are scheduled on_commit.

- Stock: reserve = UPDATE stock SET reserved = reserved + q WHERE sku_id = s AND on_hand - reserved
  >= q (0 rows ⇒ 库存不足), with its StockMovement (reserve, source "line:<line id>") and, for a
  campaign or mall line, the activity counter (sold + q <= quantity) in the same transaction.
  Sources of the other movements: cancel releases what the line still holds ("line:<line id>");
  a succeeded refund of units not yet shipped releases them ("refund:<refund no>"); shipment or
  pickup ships quantity - refund_quantity (on_hand -= q, reserved -= q; "line:<line id>"); a return
  re-stocks only when the after-sale says restock ("aftersale:<id>"). Activity counters go down with
  every release. An order with an open after-sale is not shipped (its units may be released).
- Points: a points-mall order debits its points at creation (PointsEntry source "order:<number>",
  kind redemption); a cancel returns them ("order-cancel:<number>", kind refund); a refund returns its
  points when it succeeds ("refund:<refund no>", kind refund). The order's reward (kind order,
  "order-reward:<number>") is credited when it completes: reward_points × (total_fen - refunded_fen)
  // total_fen (all of it when total_fen is 0), where reward_points = total_fen // 100 ×
  ShopPolicy.points_per_yuan × (100 + level.extra_points_percent) // 100 fixed at creation.
- Refund caps: under the order's lock, a refund books refund_booked_fen/points (order) and
  refund_quantity/fen/points (lines) in the transaction that creates it; a failed refund un-books.
  Surplus refunds (money paid twice) are not booked against the order.
- Coupons apply to normal orders only (not group buy, bargain or points mall), one per order; member
  prices apply to normal orders only (campaign and mall prices are final).
- A group-buy or bargain order's "created" OrderEvent data names its team / session
  ({"group_buy_team": id} / {"bargain_session": id}): the session's link to a cancelled order is
  cleared when it returns to active.
- Per-member limits, coupon applicability (scope, threshold, window, owner), member prices, level
  computation, the 2-level binding (order.affiliate_l1 = the buyer's live AffiliateCustomer binding's
  affiliate if active and not the buyer; l2 = its parent if active, policy.levels = 2 and not the
  buyer), commission rates (CommissionRate or the policy; campaigns with pays_commission False and
  points-mall lines pay 0), and the bargain cut rule (random, integer fen, at least 1 fen kept per
  remaining helper, the last helper takes the rest) are checked by the services.
- Append-only: OrderEvent, StockMovement, CommissionEntry, PointsEntry (but `remaining`) are never
  updated or deleted.

State machines (every change: a conditional UPDATE ... WHERE <field> = <from>; 0 rows ⇒ conflict,
re-read; plus one OrderEvent per changed field, in the same transaction)
-----------------------------------------------------------------------------------------------
Order.status (fulfilment)
  pending_payment   → awaiting_shipment  payment applied, express, not a group buy        (paid)
  pending_payment   → awaiting_pickup    payment applied, pickup, not a group buy         (paid)
  pending_payment   → awaiting_group     payment applied, group buy, team not yet full    (paid)
  pending_payment   → cancelled          member / staff / pay_by passed (sweeper)         (cancelled)
  awaiting_group    → awaiting_shipment | awaiting_pickup   the team succeeded            (group_succeeded)
  awaiting_group    → cancelled          the team failed: refund in full                  (group_failed)
  awaiting_shipment → shipped            staff ship (Shipment rows, auto_receive_at)      (shipped)
  awaiting_pickup   → received           核销 by a clerk of pickup_store (after_sales_until) (picked_up)
  awaiting_shipment | awaiting_pickup → cancelled   staff cancel, or every unit refunded before
                                         fulfilment (cancel_reason staff / refunded)     (cancelled)
  shipped           → received           member confirms / auto_receive_at passed         (received)
  received          → completed          after_sales_until passed, no open after-sale     (completed)
  cancelled, completed: final. A group-buy payment that fills the team moves the payer straight to
  awaiting_shipment/awaiting_pickup and the other seats' orders from awaiting_group.
Order.payment_status
  unpaid → paid     a Payment is applied (or, total_fen 0, at creation once points and coupon are
                    taken: the order is created pending_payment and paid in the same transaction)
  unpaid → closed   the order is cancelled unpaid (its pending Payments are closed at WeChat first;
                    if WeChat says one was paid, it is applied instead of cancelling)
Order.refund_status (moves when a Refund succeeds; recomputed from refunded_fen/points)
  none → partial | full;  partial → partial | full
Payment.status
  pending → paid     notification / query: SUCCESS, amount = amount_fen, order still unpaid
  pending → surplus  SUCCESS but the order is already paid by another payment or cancelled:
                     a Refund (reason surplus_payment, the payment's full amount) is booked at once
  pending → closed   closed at WeChat (order cancelled, or the attempt replaced)
Refund.status
  pending → processing  submitted to WeChat (same refund_no every retry)
  pending | processing → succeeded   WeChat SUCCESS (or at once for a points-only refund): order
                        refunded_*, refund_status, lines, points back, commission reversed, coupon
                        released when the order is now fully refunded
  pending | processing → failed      WeChat CLOSED/ABNORMAL or a permanent refusal: un-book; staff
                        may book a new refund (new refund_no)
AfterSale.status
  requested → awaiting_return (return_refund approved; due_at = now + return_days)
  requested → refunding (refund_only approved, by staff or at due_at = requested_at +
              after_sale_review_hours when that is > 0; the Refund is created)
  requested → rejected | cancelled (member withdraws)
  awaiting_return → returned (member gives the tracking no; due_at = the brand's receipt deadline,
              none by default) | closed (due_at passed) | cancelled
  returned → refunding (staff confirm receipt; restock) | rejected
  refunding → refunded (its Refund succeeded)
  An after-sale may be requested from awaiting_shipment, awaiting_pickup, shipped and received,
  until after_sales_until; never on awaiting_group (the team decides) or cancelled/completed.
MemberCoupon.status
  available → reserved (order created)            reserved → used (order paid)
  reserved → available | expired (order cancelled: expired when past valid_until)
  used → available | expired (order fully refunded; expired when past valid_until)
  available → expired (valid_until passed, sweeper) | revoked (staff)
GroupBuyTeam.status
  pending → open (leader's order paid: opened_at, expires_at = paid_at + team_hours)
  pending → void (leader's order cancelled unpaid)
  open → succeeded (seats_paid reaches size)      open → failed (expires_at passed, sweeper)
GroupBuySeat.status
  reserved → paid (order paid) | released (order cancelled unpaid: seats_taken - 1)
  paid → refunded (team failed: that seat's own order gets one Refund reason group_failed)
  When a team fails, its still-reserved seats' orders are cancelled (their late payments become
  surplus and are refunded).
BargainSession.status
  active → ordered (order created at current_price_fen; only at the floor unless
           allow_buy_above_floor)
  ordered → active (order cancelled, not expired, no other active session; order cleared)
          | expired (otherwise)
  active → expired (expires_at passed, sweeper)
Affiliate.status
  applied → active | rejected;  active ⇄ suspended
CommissionWithdrawal.status
  requested → approved → paid | failed;  requested → rejected | cancelled
  (failed, rejected, cancelled each book one withdraw_return entry)

Deadlines and their sweepers (each an `eta` task at the deadline plus a periodic sweep over the
partial index, both calling the same idempotent service)
  Order.pay_by          = created_at + pay_timeout_minutes   order_pay_due           cancel unpaid
  Order.auto_receive_at = shipped_at + auto_receive_days     order_receive_due       receive
  Order.after_sales_until = received_at + after_sales_days   order_after_sales_due   complete
                          (skipped while an after-sale is open; picked up again once it closes)
  AfterSale.due_at      (see the after-sale machine)         after_sale_due
  GroupBuyTeam.expires_at                                     group_buy_team_expiry   fail team
  BargainSession.expires_at                                   bargain_session_expiry  expire
  MemberCoupon.valid_until                                    member_coupon_expiring  expire
  Refund.next_attempt_at (submit / query, with backoff)       refund_due
  Payment pending (query WeChat for a lost notification)      payment_pending
  CommissionWithdrawal approved (rewards/ pays it)            commission_withdrawal_due

Numbers
  Order.number       YYYYMMDDHHMMSS (Shanghai) + 6 random digits; a collision fails the unique
                     constraint and is retried with new digits.
  Payment.out_trade_no  <number>P<nn>, nn = 01, 02, ... per order (new attempt only after the
                     previous is closed)
  Refund.refund_no   <number>R<nn>, nn = 1 + the order's refund count, under the order's row lock;
                     stored (status pending) and committed before WeChat is called; every retry and
                     query uses it, so WeChat refunds it at most once.
  AfterSale.number   <number>A<nn>, likewise.

Commission ledger
  Per order line and level (1 = order.affiliate_l1, 2 = affiliate_l2), when the order is paid (a
  group-buy order: when its team succeeds, i.e. it leaves awaiting_group): accrue
  paid_fen × rate_bp // 10000 (→ pending; none when 0). At receipt: freeze what is left pending
  (pending → frozen). At completion: settle what is left frozen (frozen → settled). A succeeded refund
  of the line reverses its share from whichever state the line's commission is in (pending, frozen or
  settled — after settlement the settled balance may go negative). Withdrawals take from settled.
  Balances per affiliate and state are sums of the entries; withdrawable = settled balance (>= the
  amount, checked under the affiliate's row lock, when requesting).
"""

from commerce.models.bargain import BargainCampaign, BargainHelp, BargainSession, BargainStatus
from commerce.models.catalog import (
    MAX_RATE_BP,
    SELLABLE_SKU,
    Category,
    Product,
    ProductImage,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovement,
    StockMovementKind,
)
from commerce.models.channel import (
    ChannelStaff,
    ChannelStatus,
    Dealer,
    DealerArea,
    DealerLevel,
    Store,
    new_store_token,
)
from commerce.models.coupons import (
    CouponKind,
    CouponScope,
    CouponStatus,
    CouponTemplate,
    CouponTemplateStatus,
    CouponValidity,
    MemberCoupon,
    new_coupon_code,
)
from commerce.models.distribution import (
    WITHDRAWAL_OPEN,
    Affiliate,
    AffiliateCustomer,
    AffiliateStatus,
    CommissionEntry,
    CommissionKind,
    CommissionRate,
    CommissionState,
    CommissionWithdrawal,
    DistributionPolicy,
    WithdrawalStatus,
)
from commerce.models.group_buy import GroupBuyCampaign, GroupBuySeat, GroupBuyTeam, SeatStatus, TeamStatus
from commerce.models.mall import MallItem
from commerce.models.members import (
    Address,
    ConsentPurpose,
    Member,
    MemberConsent,
    MemberLevel,
    MemberTag,
    MemberTagging,
    PointsEntry,
    PointsKind,
    PointsPolicy,
    TagKind,
)
from commerce.models.orders import (
    AFTER_SALE_OPEN,
    AfterSale,
    AfterSaleKind,
    AfterSaleLine,
    AfterSaleReason,
    AfterSaleStatus,
    CancelReason,
    CartItem,
    Delivery,
    Order,
    OrderEvent,
    OrderEventField,
    OrderEventKind,
    OrderKind,
    OrderLine,
    OrderStatus,
    PaymentStatus,
    PriceSource,
    RefundStatus,
    Shipment,
    ShopPolicy,
)
from commerce.models.payments import (
    Payment,
    PaymentMethod,
    PaymentRecordStatus,
    PayNotification,
    Refund,
    RefundReason,
    RefundRecordStatus,
    WeChatConfig,
)

__all__ = [
    "AFTER_SALE_OPEN",
    "MAX_RATE_BP",
    "SELLABLE_SKU",
    "WITHDRAWAL_OPEN",
    "Address",
    "Affiliate",
    "AffiliateCustomer",
    "AffiliateStatus",
    "AfterSale",
    "AfterSaleKind",
    "AfterSaleLine",
    "AfterSaleReason",
    "AfterSaleStatus",
    "BargainCampaign",
    "BargainHelp",
    "BargainSession",
    "BargainStatus",
    "CancelReason",
    "CartItem",
    "Category",
    "ChannelStaff",
    "ChannelStatus",
    "CommissionEntry",
    "CommissionKind",
    "CommissionRate",
    "CommissionState",
    "CommissionWithdrawal",
    "ConsentPurpose",
    "CouponKind",
    "CouponScope",
    "CouponStatus",
    "CouponTemplate",
    "CouponTemplateStatus",
    "CouponValidity",
    "Dealer",
    "DealerArea",
    "DealerLevel",
    "Delivery",
    "DistributionPolicy",
    "GroupBuyCampaign",
    "GroupBuySeat",
    "GroupBuyTeam",
    "MallItem",
    "Member",
    "MemberConsent",
    "MemberCoupon",
    "MemberLevel",
    "MemberTag",
    "MemberTagging",
    "Order",
    "OrderEvent",
    "OrderEventField",
    "OrderEventKind",
    "OrderKind",
    "OrderLine",
    "OrderStatus",
    "PayNotification",
    "Payment",
    "PaymentMethod",
    "PaymentRecordStatus",
    "PaymentStatus",
    "PointsEntry",
    "PointsKind",
    "PointsPolicy",
    "PriceSource",
    "Product",
    "ProductImage",
    "Refund",
    "RefundReason",
    "RefundRecordStatus",
    "RefundStatus",
    "SeatStatus",
    "Shipment",
    "ShopPolicy",
    "Sku",
    "SkuLevelPrice",
    "Stock",
    "StockMovement",
    "StockMovementKind",
    "Store",
    "TagKind",
    "TeamStatus",
    "WeChatConfig",
    "WithdrawalStatus",
    "new_coupon_code",
    "new_store_token",
]
