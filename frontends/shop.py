"""Consumer pages of the shop (商城): browsing, the cart, checkout, the member's orders and paying them
through WeChat Pay (JSAPI), delivery addresses and the points mall (积分商城).

Browsing (`shop/`, `shop/p/<id>/`, `shop/mall/`) is public; the member price of their level is shown
to a signed-in member. Everything else is the signed-in member's own (frontends.consumer: the brand's
signed member cookie); a stranger is sent through the WeChat login and back, an order of someone
else's is 404. Pages (brand hosts):
- GET  `shop/`                          sellable products by category (price, member price, stock);
- GET  `shop/p/<product_id>/`           a product's SKUs with availability; 加入购物车 / 立即购买;
- GET  `shop/cart/`                     the cart; POST `shop/cart/add|quantity|select|remove/`;
- GET  `shop/checkout/`                 lines (the selected cart lines, `?sku=&quantity=` to buy now,
                                        `?mall=` a points-mall item), address or pickup store, coupon
                                        code, totals preview; POST (hidden client_token: repeating
                                        it finds the first order) → the order page;
- GET  `shop/orders/`, `shop/orders/<number>/`   the member's orders, one order's state and lines;
- POST `shop/orders/<number>/pay/`      JSON {"params": WeChat JS-SDK chooseWXPay parameters};
- POST `shop/orders/<number>/simulate-pay/`  demo only (WECHAT_SIMULATED): the local simulator pays;
- POST `shop/orders/<number>/cancel/`, `.../receive/`   cancel unpaid, confirm receipt;
- GET/POST `shop/addresses/`            list and add; POST `shop/addresses/<id>/default|delete/`.

Every POST is CSRF protected. A refusal is a 4xx with the service's Chinese message: a page, or
{"code", "message"} when the request accepts JSON. Money is integer fen, shown in yuan.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.errors import OrderErrorCode as E
from commerce.models import (
    Address,
    CancelReason,
    Category,
    ChannelStatus,
    CouponStatus,
    Delivery,
    MallItem,
    Member,
    MemberCoupon,
    MemberLevel,
    Order,
    OrderStatus,
    PriceSource,
    Product,
    ShopPolicy,
    Sku,
    Store,
)
from commerce.services import catalog, coupons, members_levels, orders, payments
from frontends import consumer
from tenants.errors import JiumaError

MAX_QUANTITY = 99
_PAGE_ORDERS = 50
_MAX_STORES = 100
_PAYING_LOOKS = 10


# --- plumbing ------------------------------------------------------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.content_type == "application/json"


def _refuse(request: HttpRequest, title: str, code: str, message: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False}
        )
    context = {"title": title, "message": message, "code": code}
    return _page(request, "frontends/shop_notice.html", context, status=status)


def _refused(request: HttpRequest, title: str, exc: JiumaError) -> HttpResponse:
    return _refuse(request, title, str(exc.code), exc.message, exc.status_code)


def _member(request: HttpRequest, back: str | None = None) -> Member | HttpResponse:
    """The signed-in member, or the way to sign in: the WeChat login for a page, 401 for JSON."""
    member = consumer.current_member(request)
    if member is not None:
        return member
    if _wants_json(request):
        return JsonResponse(
            {"code": "not_identified", "message": _("请先登录。")},
            status=401,
            json_dumps_params={"ensure_ascii": False},
        )
    return HttpResponseRedirect(consumer.login_path(request, back or request.get_full_path()))


def _int(raw: object, *, low: int = 0, high: int = 10**15) -> int | None:
    text = str(raw or "").strip()
    if not text.isdigit() or len(text) > 16:
        return None
    value = int(text)
    return value if low <= value <= high else None


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.setdefault("tenant", request.tenant)  # type: ignore[attr-defined]
    context.setdefault("simulated", settings.WECHAT_SIMULATED)
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _level(member: Member | None) -> MemberLevel | None:
    if member is None or member.level_id is None:
        return None
    level = member.level
    return level if level is not None and level.is_active else None


def _local(target: str) -> str:
    """`target` if it is a path on this site, else ""."""
    target = target.strip()
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) <= 500:
        return target
    return ""


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """After a form POST: back to the page it came from (a local path), else `default` (303)."""
    return HttpResponseRedirect(_local(request.POST.get("next", "")) or default, status=303)


# --- browsing ------------------------------------------------------------------------------------


@dataclass
class SkuRow:
    sku: Sku
    price_fen: int
    member_price: bool
    available: int


@dataclass
class ProductRow:
    product: Product
    skus: list[SkuRow] = field(default_factory=list)

    @property
    def from_price_fen(self) -> int:
        return min(row.price_fen for row in self.skus)

    @property
    def list_from_fen(self) -> int:
        return min(row.sku.price_fen for row in self.skus)

    @property
    def member_price(self) -> bool:
        return any(row.member_price for row in self.skus)

    @property
    def available(self) -> int:
        return sum(max(row.available, 0) for row in self.skus)


def _rows(skus: list[Sku], level: MemberLevel | None) -> list[ProductRow]:
    prices = catalog.unit_prices(skus, level)
    products: dict[int, ProductRow] = {}
    for sku in skus:
        unit, source = prices[sku.pk]
        row = products.setdefault(sku.product_id, ProductRow(sku.product))
        row.skus.append(SkuRow(sku, unit, source == PriceSource.MEMBER, int(getattr(sku, "available", 0))))
    return list(products.values())


@require_GET
def shop_home(request: HttpRequest) -> HttpResponse:
    member = consumer.current_member(request)
    level = _level(member)
    skus = list(catalog.sellable_skus().select_related("product__category"))
    rows = _rows(skus, level)
    groups: dict[int | None, list[ProductRow]] = {}
    for row in rows:
        category = row.product.category
        key = category.pk if category is not None and category.is_active else None
        groups.setdefault(key, []).append(row)
    categories = {c.pk: c for c in (row.product.category for row in rows) if c is not None}
    ordered = sorted(
        (key for key in groups if key is not None), key=lambda k: (categories[k].position, categories[k].pk)
    )
    sections: list[tuple[Category | None, list[ProductRow]]] = [(categories[k], groups[k]) for k in ordered]
    if None in groups:
        sections.append((None, groups[None]))
    context = {"member": member, "level": level, "sections": sections}
    return _page(request, "frontends/shop_home.html", context)


@require_GET
def product_page(request: HttpRequest, product_id: int) -> HttpResponse:
    member = consumer.current_member(request)
    level = _level(member)
    skus = list(catalog.sellable_skus().filter(product_id=product_id))
    if not skus:
        return _refuse(request, _("商品不存在"), E.SKU_NOT_SELLABLE, _("该商品已下架或不存在。"), 404)
    (row,) = _rows(skus, level)
    context = {"member": member, "level": level, "row": row, "max_quantity": MAX_QUANTITY}
    return _page(request, "frontends/shop_product.html", context)


@require_GET
def mall(request: HttpRequest) -> HttpResponse:
    member = consumer.current_member(request)
    now = timezone.now()
    items = list(
        MallItem.objects.filter(is_active=True, sku__is_active=True)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now), Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("sku__product", "sku__stock")
        .order_by("position", "-id")[:100]
    )
    rows = []
    for item in items:
        stock = getattr(item.sku, "stock", None)
        left = stock.available if stock is not None else 0
        if item.quantity is not None:
            left = min(left, item.quantity - item.sold)
        rows.append((item, max(left, 0)))
    return _page(request, "frontends/shop_mall.html", {"member": member, "items": rows})


# --- cart ----------------------------------------------------------------------------------------


@require_GET
def cart(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    lines = orders.cart_list(member.pk)
    selected = [line for line in lines if line.is_selected and line.sellable]
    context = {
        "member": member,
        "lines": lines,
        "selected_count": sum(line.quantity for line in selected),
        "selected_fen": sum(line.unit_price_fen * line.quantity for line in selected),
        "can_checkout": bool(selected) and all(line.available >= line.quantity for line in selected),
        "max_quantity": MAX_QUANTITY,
    }
    return _page(request, "frontends/shop_cart.html", context)


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("shop-cart"))
    if isinstance(member, HttpResponse):
        return member
    sku_id = _int(request.POST.get("sku"), low=1)
    quantity = _int(request.POST.get("quantity") or "1", low=1, high=MAX_QUANTITY)
    if sku_id is None or quantity is None:
        return _refuse(request, _("无法加入购物车"), E.INVALID_QUANTITY, _("请选择规格和数量。"), 400)
    try:
        total = orders.cart_add(member.pk, sku_id, quantity)
    except JiumaError as exc:
        return _refused(request, _("无法加入购物车"), exc)
    if _wants_json(request):
        return JsonResponse({"sku": sku_id, "quantity": total})
    return HttpResponseRedirect(reverse("shop-cart"), status=303)


@require_POST
def cart_quantity(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("shop-cart"))
    if isinstance(member, HttpResponse):
        return member
    sku_id = _int(request.POST.get("sku"), low=1)
    quantity = _int(request.POST.get("quantity"), high=MAX_QUANTITY)
    if sku_id is None or quantity is None:
        return _refuse(
            request, _("无法修改数量"), E.INVALID_QUANTITY, _("数量须在 0 到 %(n)d 之间。") % {"n": MAX_QUANTITY}, 400
        )
    try:
        orders.cart_set_quantity(member.pk, sku_id, quantity)
    except JiumaError as exc:
        return _refused(request, _("无法修改数量"), exc)
    if _wants_json(request):
        return JsonResponse({"sku": sku_id, "quantity": quantity})
    return HttpResponseRedirect(reverse("shop-cart"), status=303)


@require_POST
def cart_select(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("shop-cart"))
    if isinstance(member, HttpResponse):
        return member
    selected = request.POST.get("selected") == "1"
    if request.POST.get("all") == "1":
        sku_ids = [line.sku_id for line in orders.cart_list(member.pk)]
    else:
        sku_id = _int(request.POST.get("sku"), low=1)
        if sku_id is None:
            return _refuse(request, _("操作无效"), E.INVALID_LINE, _("请选择商品。"), 400)
        sku_ids = [sku_id]
    orders.cart_select(member.pk, sku_ids, selected=selected)
    if _wants_json(request):
        return JsonResponse({"skus": sku_ids, "selected": selected})
    return HttpResponseRedirect(reverse("shop-cart"), status=303)


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("shop-cart"))
    if isinstance(member, HttpResponse):
        return member
    sku_id = _int(request.POST.get("sku"), low=1)
    if sku_id is None:
        return _refuse(request, _("操作无效"), E.INVALID_LINE, _("请选择商品。"), 400)
    orders.cart_remove(member.pk, [sku_id])
    if _wants_json(request):
        return JsonResponse({"sku": sku_id, "removed": True})
    return HttpResponseRedirect(reverse("shop-cart"), status=303)


# --- checkout ------------------------------------------------------------------------------------


@dataclass
class PreviewLine:
    name: str
    quantity: int
    unit_price_fen: int
    subtotal_fen: int
    points_each: int
    available: int
    product_id: int
    category_id: int | None


@dataclass
class Preview:
    mode: str  # cart | sku | mall
    lines: list[PreviewLine]
    sku_id: int | None = None
    quantity: int = 0
    mall_item: MallItem | None = None

    @property
    def items_fen(self) -> int:
        return sum(line.subtotal_fen for line in self.lines)

    @property
    def points_total(self) -> int:
        return sum(line.points_each * line.quantity for line in self.lines)


def _preview(request: HttpRequest, member: Member, source: Any) -> Preview | JiumaError:
    """What the member is about to order: the selected cart lines, one SKU (buy now) or a mall item."""
    level = _level(member)
    mall_id = _int(source.get("mall"), low=1)
    if mall_id is not None:
        quantity = _int(source.get("quantity") or "1", low=1, high=MAX_QUANTITY) or 1
        item = MallItem.objects.select_related("sku__product", "sku__stock").filter(pk=mall_id, is_active=True).first()
        if item is None:
            return JiumaError(E.MALL_ITEM_NOT_AVAILABLE, _("该兑换商品不在兑换期内。"), status=404)
        stock = getattr(item.sku, "stock", None)
        line = PreviewLine(
            item.title,
            quantity,
            item.cash_price_fen,
            item.cash_price_fen * quantity,
            item.points_price,
            stock.available if stock is not None else 0,
            item.sku.product_id,
            item.sku.product.category_id,
        )
        return Preview("mall", [line], quantity=quantity, mall_item=item)
    sku_id = _int(source.get("sku"), low=1)
    if sku_id is not None:
        wanted = _int(source.get("quantity") or "1", low=1, high=MAX_QUANTITY)
        if wanted is None:
            return JiumaError(E.INVALID_QUANTITY, _("数量须在 1 到 %(n)d 之间。") % {"n": MAX_QUANTITY})
        sku = catalog.sellable_skus().filter(pk=sku_id).first()
        if sku is None:
            return JiumaError(E.SKU_NOT_SELLABLE, _("该商品已下架或不存在。"), status=404)
        unit, _source = catalog.unit_price(sku, level)
        line = PreviewLine(
            sku.display_name,
            wanted,
            unit,
            unit * wanted,
            0,
            int(getattr(sku, "available", 0)),
            sku.product_id,
            sku.product.category_id,
        )
        return Preview("sku", [line], sku_id=sku_id, quantity=wanted)
    cart_lines = [line for line in orders.cart_list(member.pk) if line.is_selected]
    if not cart_lines:
        return JiumaError(E.EMPTY, _("请选择要购买的商品。"))
    categories = dict(
        Sku.objects.filter(pk__in=[line.sku_id for line in cart_lines]).values_list("pk", "product__category_id")
    )
    products = dict(Sku.objects.filter(pk__in=[line.sku_id for line in cart_lines]).values_list("pk", "product_id"))
    return Preview(
        "cart",
        [
            PreviewLine(
                line.name,
                line.quantity,
                line.unit_price_fen,
                line.unit_price_fen * line.quantity,
                0,
                line.available,
                products.get(line.sku_id, 0),
                categories.get(line.sku_id),
            )
            for line in cart_lines
        ],
    )


def _shipping_preview(policy: ShopPolicy, delivery: str, items_fen: int, level: MemberLevel | None) -> int:
    """The shipping fee checkout will charge (commerce.services.orders._shipping): a preview only."""
    if delivery != Delivery.EXPRESS or (level is not None and level.free_shipping):
        return 0
    if policy.free_shipping_threshold_fen and items_fen >= policy.free_shipping_threshold_fen:
        return 0
    return int(policy.shipping_fee_fen)


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    if request.method == "POST":
        return _place_order(request, member)
    preview = _preview(request, member, request.GET)
    if isinstance(preview, JiumaError):
        return _refused(request, _("无法结算"), preview)
    level = _level(member)
    addresses = list(Address.objects.filter(member=member))
    mall_item = preview.mall_item
    allow_express = mall_item is None or mall_item.allow_delivery
    allow_pickup = mall_item is None or mall_item.allow_pickup
    stores = list(Store.objects.filter(status=ChannelStatus.ACTIVE).order_by("name", "id")[:_MAX_STORES])
    delivery = request.GET.get("delivery", "")
    if delivery not in Delivery.values or (delivery == Delivery.PICKUP and not (allow_pickup and stores)):
        delivery = Delivery.EXPRESS if allow_express else Delivery.PICKUP
    if delivery == Delivery.EXPRESS and not allow_express:
        delivery = Delivery.PICKUP
    coupon_code = request.GET.get("coupon", "").strip()[:32]
    discount_fen, coupon_error = 0, ""
    if coupon_code and preview.mode != "mall":
        try:
            applied = coupons.apply(
                coupon_code,
                member.pk,
                [coupons.Priced(line.product_id, line.category_id, line.subtotal_fen) for line in preview.lines],
                now=timezone.now(),
            )
            discount_fen = applied.discount_fen
        except JiumaError as exc:
            coupon_error = exc.message
    my_coupons = []
    if preview.mode != "mall":
        my_coupons = list(
            MemberCoupon.objects.filter(member=member, status=CouponStatus.AVAILABLE, valid_until__gt=timezone.now())
            .select_related("template")
            .order_by("valid_until")[:20]
        )
    items_fen = preview.items_fen
    shipping_fen = _shipping_preview(ShopPolicy.current(), delivery, items_fen, level)
    short = [line for line in preview.lines if line.available < line.quantity]
    context = {
        "member": member,
        "preview": preview,
        "addresses": addresses,
        "stores": stores,
        "delivery": delivery,
        "allow_express": allow_express,
        "allow_pickup": allow_pickup and bool(stores),
        "coupon_code": coupon_code,
        "coupon_error": coupon_error,
        "coupons": my_coupons,
        "items_fen": items_fen,
        "discount_fen": discount_fen,
        "shipping_fen": shipping_fen,
        "total_fen": items_fen - discount_fen + shipping_fen,
        "points_total": preview.points_total,
        "short": short,
        "client_token": secrets.token_urlsafe(18),
    }
    return _page(request, "frontends/shop_checkout.html", context)


def _place_order(request: HttpRequest, member: Member) -> HttpResponse:
    data = request.POST
    token = data.get("client_token", "").strip()
    if not token:
        return _refuse(request, _("无法下单"), E.INVALID_CLIENT_TOKEN, _("页面已过期，请返回重新结算。"), 400)
    delivery = data.get("delivery", Delivery.EXPRESS)
    address_id = _int(data.get("address"), low=1) if delivery == Delivery.EXPRESS else None
    store_id = _int(data.get("store"), low=1) if delivery == Delivery.PICKUP else None
    mode = data.get("mode", "cart")
    lines: list[orders.LineRequest] | None = None
    if mode in ("sku", "mall"):
        ident = _int(data.get("mall" if mode == "mall" else "sku"), low=1)
        quantity = _int(data.get("quantity"), low=1, high=MAX_QUANTITY)
        if ident is None or quantity is None:
            return _refuse(request, _("无法下单"), E.INVALID_LINE, _("订单商品无效。"), 400)
        line = (
            orders.LineRequest(quantity, mall_item_id=ident)
            if mode == "mall"
            else orders.LineRequest(quantity, sku_id=ident)
        )
        lines = [line]
    elif mode != "cart":
        return _refuse(request, _("无法下单"), E.INVALID_LINE, _("订单商品无效。"), 400)
    try:
        order = orders.checkout(
            member.pk,
            lines=lines,
            from_cart=lines is None,
            delivery=delivery,
            address_id=address_id,
            pickup_store_id=store_id,
            coupon_code=data.get("coupon", "").strip()[:32] if mode != "mall" else "",
            client_token=token[:64],
            member_note=data.get("note", "")[:200],
        )
    except JiumaError as exc:
        return _refused(request, _("无法下单"), exc)
    url = reverse("shop-order", args=[order.number])
    if _wants_json(request):
        return JsonResponse({"number": order.number, "total_fen": order.total_fen, "redirect": url}, status=201)
    return HttpResponseRedirect(url, status=303)


# --- orders --------------------------------------------------------------------------------------


def _own_order(member: Member, number: str) -> Order:
    if not (number.isdigit() and len(number) == 20):
        raise Http404
    order = Order.objects.filter(number=number, member_id=member.pk).select_related("pickup_store").first()
    if order is None:
        raise Http404
    return order


def _not_found(request: HttpRequest) -> HttpResponse:
    return _refuse(request, _("订单不存在"), E.ORDER_NOT_FOUND, _("订单不存在。"), 404)


@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    found = list(
        Order.objects.filter(member_id=member.pk)
        .prefetch_related("lines")
        .order_by("-created_at", "-id")[:_PAGE_ORDERS]
    )
    return _page(request, "frontends/shop_orders.html", {"member": member, "orders": found})


@require_GET
def order_page(request: HttpRequest, number: str) -> HttpResponse:
    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    try:
        order = _own_order(member, number)
    except Http404:
        return _not_found(request)
    lines = list(order.lines.all().order_by("id"))
    payable = (
        order.status == OrderStatus.PENDING_PAYMENT
        and order.total_fen > 0
        and (order.pay_by is None or order.pay_by > timezone.now())
    )
    if _wants_json(request):
        return JsonResponse(
            {
                "number": order.number,
                "status": order.status,
                "payment_status": order.payment_status,
                "total_fen": order.total_fen,
                "payable": payable,
            }
        )
    context = {
        "member": member,
        "order": order,
        "lines": lines,
        "payable": payable,
        "cancellable": order.status == OrderStatus.PENDING_PAYMENT,
        "receivable": order.status == OrderStatus.SHIPPED,
        "paying_looks": _PAYING_LOOKS,
        # After paying: the page looks again a few times until the notification has been applied.
        "paying": (_int(request.GET.get("paying"), low=1, high=_PAYING_LOOKS) or 0)
        if order.status == OrderStatus.PENDING_PAYMENT
        else 0,
    }
    return _page(request, "frontends/shop_order.html", context)


@require_POST
def order_pay(request: HttpRequest, number: str) -> HttpResponse:
    """The JS-SDK parameters of the order's WeChat Pay attempt (always JSON)."""
    member = consumer.current_member(request)
    if member is None:
        return JsonResponse({"code": "not_identified", "message": _("请先登录。")}, status=401)
    try:
        order = _own_order(member, number)
    except Http404:
        return JsonResponse({"code": E.ORDER_NOT_FOUND, "message": _("订单不存在。")}, status=404)
    try:
        started = payments.start_payment(order, openid=member.openid or "")
    except JiumaError as exc:
        return JsonResponse(
            {"code": str(exc.code), "message": exc.message},
            status=exc.status_code,
            json_dumps_params={"ensure_ascii": False},
        )
    return JsonResponse({"number": order.number, "params": started.js_params})


@require_POST
def order_simulate_pay(request: HttpRequest, number: str) -> HttpResponse:
    """Demo only (WECHAT_SIMULATED): what paying inside WeChat does, done through the local simulator's
    control API (a desktop browser has no WeChat). The product learns of it from WeChat Pay's
    notification, as in production."""
    import json
    import urllib.error
    import urllib.request

    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    if not settings.WECHAT_SIMULATED:
        return _refuse(request, _("无法操作"), "not_simulated", _("请在微信中完成支付。"), 404)
    try:
        order = _own_order(member, number)
    except Http404:
        return _not_found(request)
    try:
        started = payments.start_payment(order, openid=member.openid or "")
    except JiumaError as exc:
        return _refused(request, _("无法支付"), exc)
    base = str(settings.WECHAT_PAY_BASE_URL).rstrip("/")
    url = f"{base}/_sim/payments/{started.payment.out_trade_no}/pay"
    body = json.dumps({"openid": member.openid}).encode()
    request_ = urllib.request.Request(  # noqa: S310 (the configured simulator's http URL)
        url, method="POST", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request_, timeout=5):  # noqa: S310 (the configured simulator)
            pass
    except (urllib.error.URLError, OSError):
        return _refuse(request, _("无法支付"), "wechat_pay_unavailable", _("微信支付暂时不可用，请稍后重试。"), 503)
    return HttpResponseRedirect(reverse("shop-order", args=[order.number]) + "?paying=1", status=303)


@require_POST
def order_cancel(request: HttpRequest, number: str) -> HttpResponse:
    member = _member(request, reverse("shop-orders"))
    if isinstance(member, HttpResponse):
        return member
    try:
        order = _own_order(member, number)
        orders.cancel(order.pk, reason=CancelReason.MEMBER, actor=f"member:{member.pk}", member_id=member.pk)
    except Http404:
        return _not_found(request)
    except JiumaError as exc:
        return _refused(request, _("无法取消"), exc)
    return HttpResponseRedirect(reverse("shop-order", args=[order.number]), status=303)


@require_POST
def order_receive(request: HttpRequest, number: str) -> HttpResponse:
    member = _member(request, reverse("shop-orders"))
    if isinstance(member, HttpResponse):
        return member
    try:
        order = _own_order(member, number)
        orders.confirm_received(order.pk, actor=f"member:{member.pk}", member_id=member.pk)
    except Http404:
        return _not_found(request)
    except JiumaError as exc:
        return _refused(request, _("无法确认收货"), exc)
    return HttpResponseRedirect(reverse("shop-order", args=[order.number]), status=303)


# --- addresses -----------------------------------------------------------------------------------

_ADDRESS_FIELDS = ("receiver_name", "phone", "region_code", "detail", "postal_code")


@require_http_methods(["GET", "POST"])
def addresses(request: HttpRequest) -> HttpResponse:
    member = _member(request)
    if isinstance(member, HttpResponse):
        return member
    error, form = "", {}
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in _ADDRESS_FIELDS}
        if not form["postal_code"]:
            form.pop("postal_code")
        try:
            members_levels.add_address(member.pk, is_default=request.POST.get("is_default") == "1", **form)
        except JiumaError as exc:
            if _wants_json(request):
                return _refused(request, _("无法保存地址"), exc)
            error = exc.message
        else:
            return _back(request, reverse("shop-addresses"))
    context = {
        "member": member,
        "addresses": list(Address.objects.filter(member=member)),
        "error": error,
        "form": form,
        "next": _local(request.GET.get("next", "") or request.POST.get("next", "")),
    }
    return _page(request, "frontends/shop_addresses.html", context, status=400 if error else 200)


@require_POST
def address_default(request: HttpRequest, address_id: int) -> HttpResponse:
    member = _member(request, reverse("shop-addresses"))
    if isinstance(member, HttpResponse):
        return member
    try:
        members_levels.set_default(member.pk, address_id)
    except JiumaError as exc:
        return _refused(request, _("无法设置默认地址"), exc)
    return _back(request, reverse("shop-addresses"))


@require_POST
def address_delete(request: HttpRequest, address_id: int) -> HttpResponse:
    member = _member(request, reverse("shop-addresses"))
    if isinstance(member, HttpResponse):
        return member
    try:
        members_levels.delete_address(member.pk, address_id)
    except JiumaError as exc:
        return _refused(request, _("无法删除地址"), exc)
    return _back(request, reverse("shop-addresses"))
