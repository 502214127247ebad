"""The shop's consumer pages (frontends.shop): browse → cart → checkout → the order page → pay (the
WeChat Pay simulator, its notification handed to the product) → paid; refusals as 4xx pages; the
member's own orders only; bounded queries on the shop and order pages."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from commerce.models import Category, Member, MemberLevel, Order, OrderStatus, PaymentStatus, Product, Sku
from commerce.services import catalog, members_levels
from tests.commerce.test_payments import deliver
from tests.conftest import Brand
from tests.support import wechat as _wechat_fixtures
from tests.support.members import signed_in
from tests.support.wechat import PayBrand

wechat_sim, alpha_pay = _wechat_fixtures.wechat_sim, _wechat_fixtures.alpha_pay  # fixtures used here


@dataclass
class Shop:
    brand: Brand
    member: Member
    other: Member
    product: Product
    sku: Sku  # 10 in stock, ¥128, member price ¥115.20 at the member's level (90 %)
    scarce: Sku  # 1 in stock
    address_id: int


def _make_shop(brand: Brand) -> Shop:
    suffix = secrets.token_hex(3)
    with tenant_context(brand.tenant):
        level = MemberLevel.objects.create(
            name=f"金卡{suffix}", rank=50 + secrets.randbelow(1000), min_points=0, price_percent=90
        )
        member = Member.objects.create(openid=f"o-shop-{suffix}", level=level)
        other = Member.objects.create(openid=f"o-shop-other-{suffix}")
        category = Category.objects.create(name=f"酱香{suffix}")
        product = Product.objects.create(name="酱香 53度 经典款", subtitle="窖藏五年", category=category)
        sku = Sku.objects.create(product=product, code=f"JX-{suffix}", spec="500ml×1瓶", price_fen=12_800)
        scarce = Sku.objects.create(product=product, code=f"JXL-{suffix}", spec="1.5L 礼盒", price_fen=98_800)
        catalog.inbound(sku.pk, 10, ref=f"t-{sku.code}", actor="test")
        catalog.inbound(scarce.pk, 1, ref=f"t-{scarce.code}", actor="test")
        address = members_levels.add_address(
            member.pk, receiver_name="张三", phone="13800138000", region_code="520102", detail="中华北路 1 号"
        )
    return Shop(brand, member, other, product, sku, scarce, address.pk)


@pytest.fixture
def shop(alpha: Brand) -> Shop:
    return _make_shop(alpha)


@pytest.fixture
def pay_shop(alpha_pay: PayBrand) -> Shop:
    return _make_shop(alpha_pay.brand)


def _token(page: Any) -> str:
    match = re.search(r'name="client_token" value="([^"]+)"', page.content.decode())
    assert match, page.content.decode()[:2000]
    return match.group(1)


def _checkout(client: Client, shop: Shop, **extra: str) -> Any:
    page = client.get("/shop/checkout/", extra)
    assert page.status_code == 200, page.content.decode()[:2000]
    data = {"client_token": _token(page), "mode": "cart", "delivery": "express", "address": str(shop.address_id)}
    data.update(extra)
    return client.post("/shop/checkout/", data)


# --- the whole way ---------------------------------------------------------------------------------


def test_browse_cart_checkout_pay_and_the_paid_order(pay_shop: Shop, alpha_pay: PayBrand, settings: Any) -> None:
    settings.WECHAT_SIMULATED = True
    shop = pay_shop
    client = signed_in(shop.brand, shop.member)
    home = client.get("/shop/").content.decode()
    assert "酱香 53度 经典款" in home
    assert 'data-member-price="11520"' in home
    assert "¥115.20" in home
    product = client.get(f"/shop/p/{shop.product.pk}/").content.decode()
    assert f'data-sku="{shop.sku.pk}" data-available="10"' in product

    added = client.post("/shop/cart/add/", {"sku": shop.sku.pk, "quantity": "2"})
    assert (added.status_code, added["Location"]) == (303, "/shop/cart/")
    cart = client.get("/shop/cart/").content.decode()
    assert f'data-cart-line="{shop.sku.pk}" data-quantity="2"' in cart
    assert client.post("/shop/cart/quantity/", {"sku": shop.sku.pk, "quantity": "3"}).status_code == 303
    assert 'data-selected-fen="34560"' in client.get("/shop/cart/").content.decode()

    checkout_page = client.get("/shop/checkout/")
    body = checkout_page.content.decode()
    assert 'data-total="34560"' in body
    assert "张三" in body
    token = _token(checkout_page)
    form = {"client_token": token, "mode": "cart", "delivery": "express", "address": str(shop.address_id)}
    placed = client.post("/shop/checkout/", form)
    assert placed.status_code == 303
    number = placed["Location"].split("/")[-2]
    assert placed["Location"] == f"/shop/orders/{number}/"
    # The same submission again (a retry): the same order, not a second one.
    assert client.post("/shop/checkout/", form)["Location"] == placed["Location"]
    with tenant_context(shop.brand.tenant):
        order = Order.objects.get(number=number)
        assert Order.objects.filter(member=shop.member).count() == 1
    assert (order.total_fen, order.status) == (34_560, OrderStatus.PENDING_PAYMENT)
    assert client.get("/shop/cart/").content.decode().count("data-cart-line=") == 0

    page = client.get(f"/shop/orders/{number}/").content.decode()
    assert 'data-status="pending_payment"' in page
    assert "待付款" in page
    assert "data-simulate-pay>" in page
    assert number in client.get("/shop/orders/").content.decode()

    # In WeChat: the page asks for the JS-SDK parameters.
    params = client.post(f"/shop/orders/{number}/pay/").json()["params"]
    assert params["package"].startswith("prepay_id=")
    assert params["signType"] == "RSA"
    assert params["paySign"]
    # The demo: the simulator pays; WeChat Pay notifies the brand; the order is paid.
    simulated = client.post(f"/shop/orders/{number}/simulate-pay/")
    assert (simulated.status_code, simulated["Location"]) == (303, f"/shop/orders/{number}/?paying=1")
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", f"{number}P01") == [204]
    page = client.get(f"/shop/orders/{number}/?paying=1").content.decode()
    assert 'data-status="awaiting_shipment"' in page
    assert 'data-payment-status="paid"' in page
    assert "待发货" in page
    assert "data-simulate-pay>" not in page
    assert 'data-paying="' not in page
    with tenant_context(shop.brand.tenant):
        order.refresh_from_db()
        assert order.payment_status == PaymentStatus.PAID
    # Paying again is refused with JSON {code, message}.
    again = client.post(f"/shop/orders/{number}/pay/")
    assert again.status_code == 409
    assert again.json()["code"] == "order_already_paid"


def test_buy_now_with_pickup_refused_without_store_and_cancel(shop: Shop) -> None:
    client = signed_in(shop.brand, shop.member)
    placed = _checkout(client, shop, sku=str(shop.sku.pk), quantity="1", mode="sku")
    assert placed.status_code == 303
    number = placed["Location"].split("/")[-2]
    with tenant_context(shop.brand.tenant):
        assert Order.objects.get(number=number).total_fen == 11_520
    cancelled = client.post(f"/shop/orders/{number}/cancel/")
    assert cancelled.status_code == 303
    page = client.get(f"/shop/orders/{number}/").content.decode()
    assert 'data-status="cancelled"' in page
    # Cancelling again: the order's state forbids it (409 page, not a 500).
    again = client.post(f"/shop/orders/{number}/cancel/")
    assert again.status_code == 409
    assert 'data-error="order_wrong_state"' in again.content.decode()
    # Pickup without a store: 400 with the service's message.
    token = _token(client.get("/shop/checkout/", {"sku": shop.sku.pk}))
    refused = client.post(
        "/shop/checkout/",
        {"client_token": token, "mode": "sku", "sku": shop.sku.pk, "quantity": 1, "delivery": "pickup"},
    )
    assert refused.status_code == 400
    assert "请选择自提门店" in refused.content.decode()


def test_addresses_add_default_delete(shop: Shop) -> None:
    client = signed_in(shop.brand, shop.member)
    bad = client.post("/shop/addresses/", {"receiver_name": "李四", "phone": "x", "region_code": "1", "detail": "d"})
    assert bad.status_code == 400
    assert "data-error" in bad.content.decode()
    made = client.post(
        "/shop/addresses/",
        {
            "receiver_name": "李四",
            "phone": "13900139000",
            "region_code": "520103",
            "detail": "云岩区 2 号",
            "next": "/shop/checkout/",
        },
    )
    assert (made.status_code, made["Location"]) == (303, "/shop/checkout/")
    with tenant_context(shop.brand.tenant):
        new = shop.member.addresses.exclude(pk=shop.address_id).get()
    assert client.post(f"/shop/addresses/{new.pk}/default/").status_code == 303
    assert f'data-address="{new.pk}" data-default="1"' in client.get("/shop/addresses/").content.decode()
    assert client.post(f"/shop/addresses/{new.pk}/delete/").status_code == 303
    page = client.get("/shop/addresses/").content.decode()
    assert f'data-address="{new.pk}"' not in page
    assert f'data-address="{shop.address_id}" data-default="1"' in page
    # Someone else's address: 404.
    assert signed_in(shop.brand, shop.other).post(f"/shop/addresses/{shop.address_id}/delete/").status_code == 404


# --- refusals --------------------------------------------------------------------------------------


def test_out_of_stock_is_a_409_page_and_changes_nothing(shop: Shop) -> None:
    client = signed_in(shop.brand, shop.member)
    refused = _checkout(client, shop, sku=str(shop.scarce.pk), quantity="2", mode="sku")
    body = refused.content.decode()
    assert refused.status_code == 409
    assert 'data-error="insufficient_stock"' in body
    assert "库存不足" in body
    as_json = client.post(
        "/shop/checkout/",
        {
            "client_token": "t-json",
            "mode": "sku",
            "sku": shop.scarce.pk,
            "quantity": 2,
            "delivery": "express",
            "address": shop.address_id,
        },
        HTTP_ACCEPT="application/json",
    )
    assert as_json.status_code == 409
    assert as_json.json()["code"] == "insufficient_stock"
    with tenant_context(shop.brand.tenant):
        assert not Order.objects.filter(member=shop.member).exists()
        assert catalog.available(shop.scarce.pk) == 1
    # An unknown product, a bad quantity: 4xx, never 500.
    assert client.get("/shop/p/999999999/").status_code == 404
    assert client.post("/shop/cart/add/", {"sku": shop.sku.pk, "quantity": "0"}).status_code == 400
    assert client.post("/shop/cart/add/", {"sku": "999999999"}).status_code == 400
    assert client.post("/shop/checkout/", {"client_token": "x", "mode": "nope"}).status_code == 400
    assert client.get("/shop/checkout/").status_code == 400  # nothing selected


def test_someone_elses_order_is_404(shop: Shop) -> None:
    owner = signed_in(shop.brand, shop.member)
    number = _checkout(owner, shop, sku=str(shop.sku.pk), quantity="1", mode="sku")["Location"].split("/")[-2]
    stranger = signed_in(shop.brand, shop.other)
    assert stranger.get(f"/shop/orders/{number}/").status_code == 404
    assert stranger.post(f"/shop/orders/{number}/cancel/").status_code == 404
    assert stranger.post(f"/shop/orders/{number}/pay/").status_code == 404
    assert stranger.get("/shop/orders/12345/").status_code == 404
    assert number not in stranger.get("/shop/orders/").content.decode()


def test_a_stranger_is_sent_to_the_wechat_login(shop: Shop) -> None:
    anonymous = Client(HTTP_HOST=shop.brand.host)
    for url in ("/shop/cart/", "/shop/checkout/", "/shop/orders/", "/shop/addresses/"):
        answer = anonymous.get(url)
        assert answer.status_code == 302, url
        assert answer["Location"].startswith("/wx/login/?next="), url
    assert anonymous.post("/shop/cart/add/", {"sku": shop.sku.pk})["Location"].startswith("/wx/login/")
    assert anonymous.post("/shop/orders/12345678901234567890/pay/").status_code == 401
    # Browsing is public: list prices only.
    home = anonymous.get("/shop/").content.decode()
    assert 'data-price="12800"' in home
    assert "data-member-price" not in home


# --- queries ---------------------------------------------------------------------------------------


def test_the_shop_and_order_pages_make_a_bounded_number_of_queries(
    shop: Shop, django_assert_max_num_queries: Any
) -> None:
    client = signed_in(shop.brand, shop.member)
    number = _checkout(client, shop, sku=str(shop.sku.pk), quantity="1", mode="sku")["Location"].split("/")[-2]
    with tenant_context(shop.brand.tenant):
        for n in range(5):  # more products do not mean more queries
            more = Product.objects.create(name=f"更多商品 {n}", category=shop.product.category)
            Sku.objects.create(product=more, code=f"M{n}-{shop.sku.code}", spec="500ml", price_fen=5_000 + n)
    client.get("/shop/")  # warm the per-process caches (tenant, domain)
    with django_assert_max_num_queries(6):
        assert client.get("/shop/").status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(f"/shop/orders/{number}/").status_code == 200
