"""The shop in the brand console's admin (commerce.admin_shop): every page opens for the owner;
the actions call the services (ship, cancel, refund, stock, coupons, after-sales, affiliates,
withdrawals) with their effects, show the service's Chinese message when it refuses and change
nothing then; roles without the permission are refused; money entered in yuan becomes exact fen."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce import admin_shop
from commerce.models import (
    Address,
    Affiliate,
    AfterSale,
    BargainCampaign,
    Category,
    CommissionEntry,
    CommissionKind,
    CommissionState,
    CommissionWithdrawal,
    CouponTemplate,
    DistributionPolicy,
    GroupBuyCampaign,
    MallItem,
    Member,
    MemberCoupon,
    MemberLevel,
    MemberTag,
    MemberTagging,
    Order,
    Payment,
    PayNotification,
    Product,
    Refund,
    Shipment,
    ShopPolicy,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovement,
)
from commerce.services import aftersales, catalog, coupons, distribution, orders
from commerce.services.orders import LineRequest
from rewards.models import Payout
from rewards.services import commission_payouts
from tenants.brand.models import AuditEntry
from tenants.errors import JiumaError
from tests.conftest import Brand

ADMIN = "/admin/commerce"
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadline tasks are not sent anywhere."""
    monkeypatch.setattr(orders, "_enqueue", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _default_approver() -> Iterator[None]:
    approver = admin_shop.withdrawal_approver()
    yield
    admin_shop.set_withdrawal_approver(approver)


def _n() -> int:
    return next(_numbers) * 1000 + timezone.now().microsecond % 1000


# --- builders (run inside the brand) ----------------------------------------------------------------


def _sku(price_fen: int = 29_900, on_hand: int = 10) -> Sku:
    product = Product.objects.create(name=f"酱香53度 经典 {_n()}")
    sku = Sku.objects.create(product=product, code=f"JX-{_n()}", spec="500ml", price_fen=price_fen)
    if on_hand:
        catalog.inbound(sku.pk, on_hand, ref=f"init-{sku.pk}", actor="test")
    return sku


def _member(**fields: Any) -> Member:
    member = Member.objects.create(openid=f"o-admin-shop-{_n()}", nickname="张三", **fields)
    Address.objects.create(
        member=member, receiver_name="张三", phone="13800138000", region_code="520102", detail="遵义路 1 号"
    )
    return member


def _order(member: Member, sku: Sku, quantity: int = 2) -> Order:
    address = Address.objects.filter(member=member).first()
    assert address is not None
    return orders.checkout(member.pk, lines=[LineRequest(quantity, sku_id=sku.pk)], address_id=address.pk)


def _paid(member: Member, sku: Sku, quantity: int = 2) -> Order:
    """Paid (awaiting shipment) with its WeChat payment recorded."""
    order = orders.mark_paid(_order(member, sku, quantity).pk)
    Payment.objects.create(
        out_trade_no=f"{order.number}P01",
        order=order,
        amount_fen=order.total_fen,
        payer_openid=member.openid,
        status="paid",
        transaction_id=f"42{order.number}",
        paid_at=timezone.now(),
    )
    return order


def _template(**fields: Any) -> CouponTemplate:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "满100减20",
        "kind": "amount_off",
        "amount_off_fen": 2_000,
        "threshold_fen": 10_000,
        "validity": "fixed",
        "valid_from": now - timedelta(days=1),
        "valid_until": now + timedelta(days=30),
        "status": "active",
        "per_member_limit": 5,
    }
    values.update(fields)
    return CouponTemplate.objects.create(**values)


def _affiliate(status: str = "applied") -> Affiliate:
    approved_at = timezone.now() if status != "applied" else None
    return Affiliate.objects.create(member=_member(), status=status, approved_at=approved_at)


def _withdrawal(amount_fen: int = 600) -> CommissionWithdrawal:
    DistributionPolicy.objects.update_or_create(pk=1, defaults={"is_enabled": True, "min_withdrawal_fen": 100})
    earner = _affiliate("active")
    CommissionEntry.objects.create(
        affiliate=earner,
        kind=CommissionKind.ADJUST,
        from_state="",
        to_state=CommissionState.SETTLED,
        amount_fen=1_000,
        source=f"adjust:{_n()}",
    )
    return distribution.request_withdrawal(earner, amount_fen)


def _refusal(call: Any) -> str:
    """The Chinese message the service gives when it refuses `call` (nothing changes: it refused)."""
    with pytest.raises(JiumaError) as caught:
        call()
    return caught.value.message


def _act(client: Client, model: str, action: str, ids: list[int], **fields: Any) -> Any:
    """An action as its confirmation/form page posts it back (`post=yes`), redirects followed."""
    data: dict[str, Any] = {"action": action, "_selected_action": [str(pk) for pk in ids], "post": "yes", **fields}
    return client.post(f"{ADMIN}/{model}/", data, follow=True)


def _ask(client: Client, model: str, action: str, ids: list[int]) -> Any:
    """The action chosen in the changelist's action bar: its form or confirmation page."""
    data = {"action": action, "_selected_action": [str(pk) for pk in ids], "index": "0"}
    return client.post(f"{ADMIN}/{model}/", data)


def _audits(detail: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="action", detail=detail).order_by("id"))


# --- pages ------------------------------------------------------------------------------------------


def test_the_owner_opens_every_shop_page(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku()
        level = MemberLevel.objects.create(name="金卡", rank=1, min_points=100)
        SkuLevelPrice.objects.create(sku=sku, level=level, price_fen=28_000)
        Category.objects.create(name="酱香型")
        tag = MemberTag.objects.create(name="老客", kind="rule", rule={"min_orders": 1})
        member = _member()
        order = _paid(member, sku)
        after_sale = aftersales.request(
            order,
            member=member,
            kind="refund_only",
            lines=[aftersales.LineRequest(order.lines.get().pk, 1)],
            reason="not_wanted",
        )
        template = _template()
        coupon = coupons.issue(template.pk, member.pk)
        now = timezone.now()
        mall = MallItem.objects.create(sku=sku, title="积分兑换 酱香", points_price=500, is_active=True)
        group = GroupBuyCampaign.objects.create(
            name="两人团", sku=sku, group_price_fen=19_900, team_size=2, starts_at=now, ends_at=now + timedelta(days=3)
        )
        bargain = BargainCampaign.objects.create(
            name="砍一刀",
            sku=sku,
            start_price_fen=29_900,
            floor_price_fen=9_900,
            max_helps=5,
            starts_at=now,
            ends_at=now + timedelta(days=3),
        )
        withdrawal = _withdrawal()
        affiliate = withdrawal.affiliate
        entry = CommissionEntry.objects.filter(affiliate=affiliate).first()
        ShopPolicy.current()
        DistributionPolicy.current()
        notification = PayNotification.objects.create(
            event_id=f"ev-{_n()}", event_type="TRANSACTION.SUCCESS", resource={}
        )
        payment = Payment.objects.get(order=order)
        ids = {
            "category": Category.objects.first().pk,  # type: ignore[union-attr]
            "product": sku.product_id,
            "sku": sku.pk,
            "stock": sku.pk,
            "stockmovement": StockMovement.objects.filter(sku=sku).first().pk,  # type: ignore[union-attr]
            "memberlevel": level.pk,
            "membertag": tag.pk,
            "shoppolicy": 1,
            "order": order.pk,
            "aftersale": after_sale.pk,
            "payment": payment.pk,
            "paynotification": notification.pk,
            "coupontemplate": template.pk,
            "membercoupon": coupon.pk,
            "mallitem": mall.pk,
            "groupbuycampaign": group.pk,
            "bargaincampaign": bargain.pk,
            "distributionpolicy": 1,
            "affiliate": affiliate.pk,
            "commissionentry": entry.pk,  # type: ignore[union-attr]
            "commissionwithdrawal": withdrawal.pk,
        }
    owner = alpha.client("owner")
    for model, pk in ids.items():
        for path in (f"{ADMIN}/{model}/", f"{ADMIN}/{model}/{pk}/change/"):
            response = owner.get(path)
            assert response.status_code == 200, path
    for model in ("refund", "commissionrate"):
        assert owner.get(f"{ADMIN}/{model}/").status_code == 200, model
    for model in ("category", "product", "sku", "memberlevel", "membertag", "coupontemplate", "mallitem"):
        assert owner.get(f"{ADMIN}/{model}/add/").status_code == 200, model
    for model in ("groupbuycampaign", "bargaincampaign", "commissionrate"):
        assert owner.get(f"{ADMIN}/{model}/add/").status_code == 200, model
    page = owner.get(f"{ADMIN}/order/{order.pk}/change/").content.decode()
    assert order.number in page
    assert "¥598.00" in page
    assert "JX-" in page
    assert f"{order.number}A01" in page  # its after-sale
    listing = owner.get(f"{ADMIN}/order/?q={order.number}").content.decode()
    assert "待发货" in listing
    stock_page = owner.get(f"{ADMIN}/stock/").content.decode()
    assert sku.code in stock_page
    for model in ("order", "stockmovement", "payment", "paynotification", "commissionentry"):
        assert owner.get(f"{ADMIN}/{model}/add/").status_code == 403, model


# --- orders -----------------------------------------------------------------------------------------


def test_shipping_in_the_admin_moves_the_order_and_the_stock(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku()
        order = _paid(_member(), sku)
    owner = alpha.client("owner")
    form = _ask(owner, "order", "ship", [order.pk])
    assert form.status_code == 200
    assert "快递单号" in form.content.decode()
    done = _act(owner, "order", "ship", [order.pk], carrier="SF", tracking_no="SF1234567890")
    assert "已发货 1 个订单" in done.content.decode()
    with tenant_context(alpha.tenant):
        shipped = Order.objects.get(pk=order.pk)
        assert shipped.status == "shipped"
        shipment = Shipment.objects.get(order=order)
        assert (shipment.carrier_code, shipment.carrier_name, shipment.tracking_no) == (
            "SF",
            "顺丰速运",
            "SF1234567890",
        )
        assert shipment.shipped_by == "staff:owner"
        stock = Stock.objects.get(pk=sku.pk)
        assert (stock.on_hand, stock.reserved) == (8, 0)
        (entry,) = _audits("订单发货")
        assert (entry.object_id, entry.actor_name, entry.after["status"]) == (str(order.pk), "owner", "shipped")
        message = _refusal(lambda: orders.ship(order.pk, [orders.Parcel("SF", "顺丰", "SF0000000001")], actor="x"))
    again = _act(owner, "order", "ship", [order.pk], carrier="SF", tracking_no="SF0000000001")
    assert message in again.content.decode()
    with tenant_context(alpha.tenant):
        assert Shipment.objects.filter(order=order).count() == 1
        assert len(_audits("订单发货")) == 1


def test_cancelling_an_unpaid_order_gives_its_stock_back(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku()
        member = _member()
        unpaid = _order(member, sku)
        paid = _paid(member, sku, 1)
    owner = alpha.client("owner")
    assert "确认取消" in _ask(owner, "order", "cancel_unpaid", [unpaid.pk]).content.decode()
    _act(owner, "order", "cancel_unpaid", [unpaid.pk])
    with tenant_context(alpha.tenant):
        cancelled = Order.objects.get(pk=unpaid.pk)
        assert (cancelled.status, cancelled.payment_status, cancelled.cancel_reason) == ("cancelled", "closed", "staff")
        assert Stock.objects.get(pk=sku.pk).reserved == 1
        message = _refusal(lambda: orders.cancel(paid.pk, reason="staff", actor="x"))
    refused = _act(owner, "order", "cancel_unpaid", [paid.pk])
    assert message in refused.content.decode()
    with tenant_context(alpha.tenant):
        assert Order.objects.get(pk=paid.pk).status == "awaiting_shipment"


def test_a_refund_entered_in_yuan_is_booked_in_exact_fen(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        order = _paid(_member(), _sku(29_900), 2)  # ¥598.00
    owner = alpha.client("owner")
    assert "可退金额：¥598.00" in _ask(owner, "order", "book_refund", [order.pk]).content.decode()
    done = _act(owner, "order", "book_refund", [order.pk], amount_yuan="123.45", points="0", note="少发一瓶赠品")
    assert "已提交 1 笔退款" in done.content.decode()
    with tenant_context(alpha.tenant):
        refund = Refund.objects.get(order=order)
        assert (refund.amount_fen, refund.reason, refund.note, refund.status) == (
            12_345,
            "manual",
            "少发一瓶赠品",
            "pending",
        )
        assert refund.created_by == "staff:owner"
        assert Order.objects.get(pk=order.pk).refund_booked_fen == 12_345
        assert _audits("人工退款")[0].after["amount_fen"] == 12_345
    # Finer than a fen: the form is shown again, nothing booked.
    finer = _act(owner, "order", "book_refund", [order.pk], amount_yuan="0.001", note="x")
    assert finer.status_code == 200
    assert 'name="amount_yuan"' in finer.content.decode()
    # More than is left: the service's message, nothing booked.
    too_much = _act(owner, "order", "book_refund", [order.pk], amount_yuan="474.56", note="x")
    assert "退款超过订单可退金额。" in too_much.content.decode()
    with tenant_context(alpha.tenant):
        assert Refund.objects.filter(order=order).count() == 1
        assert Order.objects.get(pk=order.pk).refund_booked_fen == 12_345


def test_only_roles_with_the_permission_ship_or_refund(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        order = _paid(_member(), _sku())
    service = alpha.client("customer_service")  # reads and changes orders, neither ships nor refunds
    listing = service.get(f"{ADMIN}/order/").content.decode()
    assert order.number in listing
    assert "发货" not in listing.split('name="action"')[1].split("</select>")[0]
    _act(service, "order", "ship", [order.pk], carrier="SF", tracking_no="SF1234567890")
    _act(service, "order", "book_refund", [order.pk], amount_yuan="1.00", note="x")
    with tenant_context(alpha.tenant):
        assert Order.objects.get(pk=order.pk).status == "awaiting_shipment"
        assert not Refund.objects.filter(order=order).exists()
    warehouse = alpha.client("warehouse")  # sees orders and ships them; never refunds
    assert warehouse.get(f"{ADMIN}/order/").status_code == 200
    _act(warehouse, "order", "book_refund", [order.pk], amount_yuan="1.00", note="x")
    with tenant_context(alpha.tenant):
        assert not Refund.objects.filter(order=order).exists()
    _act(warehouse, "order", "ship", [order.pk], carrier="SF", tracking_no="SF1234567890")
    with tenant_context(alpha.tenant):
        assert Order.objects.get(pk=order.pk).status == "shipped"
    assert alpha.client("operator").get(f"{ADMIN}/refund/").status_code == 200  # read-only for them
    assert alpha.client("customer_service").get(f"{ADMIN}/refund/").status_code == 403


# --- stock ------------------------------------------------------------------------------------------


def test_receiving_and_adjusting_stock_go_through_the_catalog_services(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku(on_hand=0)
        other = _sku(on_hand=5)
        _order(_member(), other, 3)  # 3 of 5 reserved
    owner = alpha.client("owner")
    assert "入库数量" in _ask(owner, "sku", "receive_stock", [sku.pk]).content.decode()
    _act(owner, "sku", "receive_stock", [sku.pk], quantity="24", ref="RK-001", note="首批")
    _act(owner, "stock", "receive_stock", [sku.pk], quantity="24", ref="RK-001", note="重复提交")  # once per ref
    _act(owner, "stock", "adjust_stock", [sku.pk], delta="-4", ref="PD-001", note="破损")
    with tenant_context(alpha.tenant):
        assert Stock.objects.get(pk=sku.pk).on_hand == 20
        kinds = list(
            StockMovement.objects.filter(sku=sku).order_by("id").values_list("kind", "on_hand_delta", "created_by")
        )
        assert kinds == [("inbound", 24, "staff:owner"), ("adjust", -4, "staff:owner")]
        assert [e.detail for e in AuditEntry.objects.filter(object_type="commerce.stock").order_by("id")] == [
            "入库",
            "入库",
            "盘点调整",
        ]
        message = _refusal(lambda: catalog.adjust(other.pk, -3, ref="PD-X", actor="x"))
    refused = _act(owner, "stock", "adjust_stock", [other.pk], delta="-3", ref="PD-002", note="盘亏")
    assert message in refused.content.decode()
    counted = _act(owner, "stock", "stocktake", [other.pk], on_hand="4", ref="PD-003", note="月末盘点")
    assert "已盘点 1 个 SKU" in counted.content.decode()
    with tenant_context(alpha.tenant):
        assert (Stock.objects.get(pk=other.pk).on_hand, Stock.objects.get(pk=other.pk).reserved) == (4, 3)
    service = alpha.client("customer_service")  # may read stock, not move it
    _act(service, "stock", "receive_stock", [sku.pk], quantity="1", ref="RK-CS", note="")
    with tenant_context(alpha.tenant):
        assert Stock.objects.get(pk=sku.pk).on_hand == 20


# --- catalog in yuan --------------------------------------------------------------------------------


def test_a_product_with_its_skus_is_priced_in_yuan_and_stored_in_exact_fen(alpha: Brand) -> None:
    owner = alpha.client("owner")

    def form(price: str, original: str = "") -> dict[str, Any]:
        return {
            "name": "酱香53度 珍藏",
            "description": "",
            "is_active": "on",
            "category": "",
            "subtitle": "",
            "position": "0",
            "skus-TOTAL_FORMS": "1",
            "skus-INITIAL_FORMS": "0",
            "skus-MIN_NUM_FORMS": "0",
            "skus-MAX_NUM_FORMS": "1000",
            "skus-0-code": "ZC-500",
            "skus-0-spec": "53%vol 500ml",
            "skus-0-price_yuan": price,
            "skus-0-original_price_yuan": original,
            "skus-0-bottles_per_case": "6",
            "skus-0-is_active": "on",
            "skus-0-position": "0",
            "images-TOTAL_FORMS": "0",
            "images-INITIAL_FORMS": "0",
            "images-MIN_NUM_FORMS": "0",
            "images-MAX_NUM_FORMS": "1000",
        }

    refused = owner.post(f"{ADMIN}/product/add/", form("299.905"))
    assert refused.status_code == 200
    with tenant_context(alpha.tenant):
        assert not Sku.objects.filter(code="ZC-500").exists()
    created = owner.post(f"{ADMIN}/product/add/", form("1299.90", "1499"))
    assert created.status_code == 302, created.content.decode()[-2000:]
    with tenant_context(alpha.tenant):
        sku = Sku.objects.get(code="ZC-500")
        assert (sku.price_fen, sku.original_price_fen) == (129_990, 149_900)
        level = MemberLevel.objects.create(name="钻石", rank=3, min_points=1000)
    page = owner.get(f"{ADMIN}/sku/{sku.pk}/change/").content.decode()
    assert 'value="1299.90"' in page
    data = {
        "product": str(sku.product_id),
        "code": "ZC-500",
        "spec": "53%vol 500ml",
        "price_yuan": "1299.90",
        "original_price_yuan": "1499.00",
        "bottles_per_case": "6",
        "is_active": "on",
        "position": "0",
        "level_prices-TOTAL_FORMS": "1",
        "level_prices-INITIAL_FORMS": "0",
        "level_prices-MIN_NUM_FORMS": "0",
        "level_prices-MAX_NUM_FORMS": "1000",
        "level_prices-0-level": str(level.pk),
        "level_prices-0-price_yuan": "1188.88",
    }
    assert owner.post(f"{ADMIN}/sku/{sku.pk}/change/", data).status_code == 302
    with tenant_context(alpha.tenant):
        assert SkuLevelPrice.objects.get(sku=sku, level=level).price_fen == 118_888


def test_saving_a_campaign_never_writes_back_its_sold_counter(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku()
        item = MallItem.objects.create(sku=sku, title="积分兑换", points_price=500, quantity=10, is_active=True)
    owner = alpha.client("owner")
    page = owner.get(f"{ADMIN}/mallitem/{item.pk}/change/")
    assert page.status_code == 200
    with tenant_context(alpha.tenant):
        MallItem.objects.filter(pk=item.pk).update(sold=3)  # an order meanwhile
    data = {
        "sku": str(sku.pk),
        "title": "积分兑换 新版",
        "points_price": "800",
        "cash_price_yuan": "9.90",
        "quantity": "10",
        "per_member_limit": "",
        "allow_delivery": "on",
        "is_active": "on",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "position": "0",
    }
    response = owner.post(f"{ADMIN}/mallitem/{item.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    with tenant_context(alpha.tenant):
        saved = MallItem.objects.get(pk=item.pk)
        assert (saved.title, saved.cash_price_fen, saved.sold) == ("积分兑换 新版", 990, 3)
        entry = AuditEntry.objects.filter(object_type="commerce.mallitem", action="update").latest("id")
        assert entry.after["cash_price_fen"] == 990


# --- coupons and tags -------------------------------------------------------------------------------


def test_coupons_are_issued_to_a_member_or_a_tag_and_revoked(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        template = _template(per_member_limit=1)
        first, second, third = _member(), _member(), _member()
        tag = MemberTag.objects.create(name=f"VIP{_n()}")
        MemberTagging.objects.bulk_create([MemberTagging(member=m, tag=tag) for m in (second, third)])
    owner = alpha.client("owner")
    page = _ask(owner, "coupontemplate", "issue", [template.pk]).content.decode()
    assert "会员 ID" in page
    _act(owner, "coupontemplate", "issue", [template.pk], member_id=str(first.pk), batch="b1")
    _act(owner, "coupontemplate", "issue", [template.pk], member_id=str(first.pk), batch="b1")  # resubmitted
    with_tag = _act(owner, "coupontemplate", "issue", [template.pk], tag=str(tag.pk), batch="b2")
    assert "已发放 2 张优惠券" in with_tag.content.decode()
    again = _act(owner, "coupontemplate", "issue", [template.pk], member_id=str(first.pk), batch="b3")
    assert "每人限领 1 张" in again.content.decode()  # the service's refusal
    with tenant_context(alpha.tenant):
        issued = MemberCoupon.objects.filter(template=template)
        assert sorted(issued.values_list("member_id", flat=True)) == sorted([first.pk, second.pk, third.pk])
        assert CouponTemplate.objects.get(pk=template.pk).issued == 3
        coupon = issued.get(member=first)
    _act(owner, "membercoupon", "revoke", [coupon.pk])
    with tenant_context(alpha.tenant):
        assert MemberCoupon.objects.get(pk=coupon.pk).status == "revoked"
        message = _refusal(lambda: coupons.revoke(coupon.pk, actor="x"))
    assert message in _act(owner, "membercoupon", "revoke", [coupon.pk]).content.decode()


def test_a_coupon_template_is_created_in_yuan(alpha: Brand) -> None:
    owner = alpha.client("owner")
    data = {
        "name": "满300减50",
        "description": "",
        "status": "active",
        "kind": "amount_off",
        "amount_off_yuan": "50",
        "percent_off": "0",
        "max_discount_yuan": "",
        "threshold_yuan": "300.00",
        "scope": "all",
        "validity": "relative",
        "valid_days": "30",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "is_claimable": "on",
        "claim_starts_at_0": "",
        "claim_starts_at_1": "",
        "claim_ends_at_0": "",
        "claim_ends_at_1": "",
        "total_quantity": "",
        "per_member_limit": "1",
    }
    response = owner.post(f"{ADMIN}/coupontemplate/add/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.tenant):
        template = CouponTemplate.objects.get(name="满300减50")
        assert (template.amount_off_fen, template.threshold_fen, template.created_by) == (5_000, 30_000, "owner")


def test_a_rule_tag_is_recalculated_from_the_admin(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        buyer = _member()
        _paid(buyer, _sku(), 1)
        tag = MemberTag.objects.create(name=f"下过单{_n()}", kind="rule", rule={"min_orders": 1})
        manual = MemberTag.objects.create(name=f"手动{_n()}")
    owner = alpha.client("owner")
    done = _act(owner, "membertag", "evaluate", [tag.pk, manual.pk]).content.decode()
    assert "只有规则标签可以按规则打标。" in done
    with tenant_context(alpha.tenant):
        assert list(MemberTagging.objects.filter(tag=tag).values_list("member_id", flat=True)) == [buyer.pk]
        assert not MemberTagging.objects.filter(tag=manual).exists()
        assert len(_audits("重新计算规则标签")) == 1


# --- after-sales ------------------------------------------------------------------------------------


def test_after_sales_are_approved_rejected_and_returns_confirmed_with_restock(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        sku = _sku()
        member = _member()
        order = _paid(member, sku, 2)
        orders.ship(order.pk, [orders.Parcel("SF", "顺丰", "SF1234567890")], actor="test")
        line = order.lines.get()
        returning = aftersales.request(
            order, member=member, kind="return_refund", lines=[aftersales.LineRequest(line.pk, 1)], reason="quality"
        )
    owner = alpha.client("owner")
    assert "确认同意" in _ask(owner, "aftersale", "approve", [returning.pk]).content.decode()
    _act(owner, "aftersale", "approve", [returning.pk], note="")
    with tenant_context(alpha.tenant):
        approved = AfterSale.objects.get(pk=returning.pk)
        assert (approved.status, approved.reviewed_by) == ("awaiting_return", "staff:owner")
        aftersales.submit_return(approved, member=member, carrier_code="SF", tracking_no="SF9876543210")
    _act(owner, "aftersale", "confirm_return", [returning.pk], restock="on")
    with tenant_context(alpha.tenant):
        confirmed = AfterSale.objects.get(pk=returning.pk)
        assert (confirmed.status, confirmed.restock) == ("refunding", True)
        assert Refund.objects.get(after_sale=confirmed).amount_fen == line.paid_fen // 2
        message = _refusal(lambda: aftersales.reject(confirmed, actor="x", note="x"))
    refused = _act(owner, "aftersale", "reject", [returning.pk], note="不符合")
    assert message in refused.content.decode()
    with tenant_context(alpha.tenant):
        other = _paid(member, sku, 1)
        asked = aftersales.request(
            other,
            member=member,
            kind="refund_only",
            lines=[aftersales.LineRequest(other.lines.get().pk, 1)],
            reason="not_wanted",
        )
    assert "说明" in _ask(owner, "aftersale", "reject", [asked.pk]).content.decode()
    _act(owner, "aftersale", "reject", [asked.pk], note="已发货，不支持仅退款")
    with tenant_context(alpha.tenant):
        rejected = AfterSale.objects.get(pk=asked.pk)
        assert (rejected.status, rejected.review_note) == ("rejected", "已发货，不支持仅退款")


# --- distribution -----------------------------------------------------------------------------------


def test_affiliates_are_approved_suspended_and_resumed(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        applied = _affiliate()
    owner = alpha.client("owner")
    _act(owner, "affiliate", "approve", [applied.pk])
    with tenant_context(alpha.tenant):
        assert Affiliate.objects.get(pk=applied.pk).status == "active"
        message = _refusal(lambda: distribution.approve(Affiliate.objects.get(pk=applied.pk), actor="x"))
    assert message in _act(owner, "affiliate", "approve", [applied.pk]).content.decode()
    _act(owner, "affiliate", "suspend", [applied.pk])
    with tenant_context(alpha.tenant):
        assert Affiliate.objects.get(pk=applied.pk).status == "suspended"
    _act(owner, "affiliate", "resume", [applied.pk])
    with tenant_context(alpha.tenant):
        assert Affiliate.objects.get(pk=applied.pk).status == "active"
        assert [e.detail for e in AuditEntry.objects.filter(object_type="commerce.affiliate").order_by("id")] == [
            "通过分销员申请",
            "停用分销员",
            "恢复分销员",
        ]


def test_an_approved_withdrawal_gets_its_payout(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        withdrawal = _withdrawal(600)
    owner = alpha.client("owner")
    assert "确认批准" in _ask(owner, "commissionwithdrawal", "approve", [withdrawal.pk]).content.decode()
    _act(owner, "commissionwithdrawal", "approve", [withdrawal.pk])
    with tenant_context(alpha.tenant):
        approved = CommissionWithdrawal.objects.get(pk=withdrawal.pk)
        assert (approved.status, approved.reviewed_by) == ("approved", "staff:owner")
        # rewards/admin.py installs the approver that creates the payout at once; the sweeper
        # finds nothing more to make.
        assert Payout.objects.get(source=withdrawal.payout_source).amount_fen == 600
        assert commission_payouts.sweep() == 0
        second = _withdrawal(700)
    _act(owner, "commissionwithdrawal", "approve", [second.pk])
    with tenant_context(alpha.tenant):
        payout = Payout.objects.get(source=second.payout_source)
        assert (payout.amount_fen, payout.member_id) == (700, second.affiliate.member_id)
        assert CommissionWithdrawal.objects.get(pk=second.pk).payout_bill_no == payout.out_bill_no
        assert _audits("批准佣金提现")[-1].after["payout"] == payout.out_bill_no
        message = _refusal(lambda: commission_payouts.approve(second, actor="x"))
    again = _act(owner, "commissionwithdrawal", "approve", [second.pk])
    assert message in again.content.decode()
    with tenant_context(alpha.tenant):
        assert Payout.objects.filter(source=second.payout_source).count() == 1


def test_a_rejected_withdrawal_goes_back_to_the_balance_and_others_may_not_decide(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        withdrawal = _withdrawal(600)
        affiliate = withdrawal.affiliate
        assert distribution.balances(affiliate).settled == 400
    operator = alpha.client("operator")  # may not create payouts
    _act(operator, "commissionwithdrawal", "approve", [withdrawal.pk])
    _act(operator, "commissionwithdrawal", "reject", [withdrawal.pk], note="x")
    with tenant_context(alpha.tenant):
        assert CommissionWithdrawal.objects.get(pk=withdrawal.pk).status == "requested"
    assert alpha.client("warehouse").get(f"{ADMIN}/commissionwithdrawal/").status_code in (200, 403)
    owner = alpha.client("owner")
    asked = _act(owner, "commissionwithdrawal", "reject", [withdrawal.pk], note="")
    assert asked.status_code == 200
    assert 'name="note"' in asked.content.decode()
    _act(owner, "commissionwithdrawal", "reject", [withdrawal.pk], note="信息不符")
    with tenant_context(alpha.tenant):
        rejected = CommissionWithdrawal.objects.get(pk=withdrawal.pk)
        assert (rejected.status, rejected.note) == ("rejected", "信息不符")
        assert distribution.balances(affiliate).settled == 1_000
