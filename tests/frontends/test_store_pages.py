"""Store rewards over HTTP: the store and clerk QR pages tie a consumer's cap scan; the terminal's
服务员扫码, 我的收益, 申请提现 and QR images with their permission checks; the console's withdrawal
actions and balance summary."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from PIL import Image

from codes import format as code_format
from codes import services as code_services
from codes.keyring import keyring
from commerce.models import ChannelStaff, ConsentPurpose, Member
from commerce.services import members
from rewards.models import Claim, StoreEarning, StoreEarningKind, StoreWithdrawal, WithdrawalStatus
from rewards.services import store_rewards
from tenants.brand.models import AuditEntry
from tests.conftest import Brand
from tests.rewards.conftest import running_campaign
from tests.rewards.test_store_rewards import POINTS, build_world, code_of, inner, serial_of
from tests.support.members import signed_in

CODE_HOST = "c.localhost"  # the short code host of the test settings

ADMIN = "/admin/rewards"


@pytest.fixture
def world(alpha: Brand) -> SimpleNamespace:
    with tenant_context(alpha.tenant):
        return build_world(alpha)


def _consenting(brand: Brand, openid: str) -> Member:
    with tenant_context(brand.tenant):
        member = Member.objects.create(openid=openid)
        members.record_consent(
            member, ConsentPurpose.PRIVACY_POLICY, version=settings.PRIVACY_POLICY_VERSION, granted=True
        )
    return member


def _as(brand: Brand, staff: ChannelStaff) -> Client:
    client = Client(HTTP_HOST=brand.host)
    with schema_context(brand.schema):
        client.force_login(staff.user)
    return client


def _post(client: Client, path: str, body: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type="application/json")


def _credit(world: SimpleNamespace, clerk: ChannelStaff | None, amount_fen: int, source: str) -> None:
    with tenant_context(world.brand.tenant):
        StoreEarning.objects.create(
            store=world.store, clerk=clerk, kind=StoreEarningKind.ADJUSTMENT, amount_fen=amount_fen, source=source
        )


def _decoded(data: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


# --- consumers: the QR at the till -------------------------------------------------------------------


def test_the_store_qr_page_ties_the_consumers_next_cap_scan(alpha: Brand, world: SimpleNamespace) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([POINTS])
    consumer = signed_in(alpha, _consenting(alpha, "o-till-1"))
    page = consumer.get(f"/s/{world.store.qr_token}/")
    assert page.status_code == 200
    assert "已关联门店 南明酒楼，开瓶后扫描瓶盖内码领奖" in page.content.decode()
    cookie = page.cookies[f"jm_store_{alpha.tenant.number}"]
    assert cookie["httponly"]
    assert cookie["max-age"] == 30 * 60
    assert page["Cache-Control"] == "no-store"
    assert consumer.get(f"/C/{inner(world, 0)}").status_code == 200
    with tenant_context(alpha.tenant):
        claim = Claim.objects.get(serial=serial_of(world, 0))
        assert (claim.store_id, claim.clerk_id) == (world.store.pk, None)
        assert [(e.clerk_id, e.amount_fen) for e in StoreEarning.objects.all()] == [(None, 100)]
        token = store_rewards.clerk_token(world.clerk)
    # A clerk's QR: the store and the clerk.
    other = signed_in(alpha, _consenting(alpha, "o-till-2"))
    assert other.get(f"/s/{token}/").status_code == 200
    other.get(f"/C/{inner(world, 1)}")
    with tenant_context(alpha.tenant):
        claim = Claim.objects.get(serial=serial_of(world, 1))
        assert (claim.store_id, claim.clerk_id) == (world.store.pk, world.clerk.pk)
        assert store_rewards.balance(world.store) == 200
        assert store_rewards.balance(world.store, world.clerk) == 50


def test_forged_foreign_or_closed_store_qr_codes_tie_nothing(alpha: Brand, beta: Brand, world: SimpleNamespace) -> None:
    with tenant_context(alpha.tenant):
        token = store_rewards.clerk_token(world.clerk)
    client = Client(HTTP_HOST=alpha.host)
    for path in ("/s/not-a-token/", f"/s/{token[:-2]}xx/", f"/s/{world.store.qr_token[:-1]}/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "门店码无效" in response.content.decode()
        assert not response.cookies
    # Alpha's store and clerk tokens mean nothing on beta's host.
    on_beta = Client(HTTP_HOST=beta.host)
    assert on_beta.get(f"/s/{token}/").status_code == 404
    assert on_beta.get(f"/s/{world.store.qr_token}/").status_code == 404
    assert client.post(f"/s/{world.store.qr_token}/").status_code == 405


def test_an_expired_or_forged_cookie_ties_no_scan(alpha: Brand, world: SimpleNamespace) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([POINTS])
        tie = store_rewards.resolve_qr(world.store.qr_token)
        assert tie is not None
        stale = store_rewards.tie_cookie_value(tie, timezone.now() - timedelta(minutes=31))
        fresh = store_rewards.tie_cookie_value(tie)
    name = f"jm_store_{alpha.tenant.number}"
    for index, value in ((2, stale), (3, fresh[:-3] + "abc"), (4, "nonsense")):
        consumer = signed_in(alpha, _consenting(alpha, f"o-stale-{index}"))
        consumer.cookies[name] = value
        assert consumer.get(f"/C/{inner(world, index)}").status_code == 200
        with tenant_context(alpha.tenant):
            claim = Claim.objects.get(serial=serial_of(world, index))
            assert (claim.store_id, claim.clerk_id) == (None, None)
    with tenant_context(alpha.tenant):
        assert not StoreEarning.objects.exists()


# --- the terminal -------------------------------------------------------------------------------------


def test_the_terminal_shows_store_staff_their_rewards_sections(alpha: Brand, world: SimpleNamespace) -> None:
    clerk_page = _as(alpha, world.clerk).get("/t/").content.decode()
    for text in ("服务员扫码", "我的收益", "我的门店码", "/t/qr/me.png", "/t/clerk-scan/", "¥0", "每瓶奖励 ¥0.80"):
        assert text in clerk_page, text
    assert "/t/qr/store.png" not in clerk_page
    assert "门店余额" not in clerk_page
    owner_page = _as(alpha, world.owner).get("/t/").content.decode()
    assert "/t/qr/store.png" in owner_page
    assert "门店余额" in owner_page
    dealer_page = _as(alpha, world.dealer_clerk).get("/t/").content.decode()
    assert "服务员扫码" not in dealer_page


def test_a_clerk_scans_an_opened_cap_at_the_terminal(alpha: Brand, beta: Brand, world: SimpleNamespace) -> None:
    clerk = _as(alpha, world.clerk)
    done = _post(clerk, "/t/clerk-scan/", {"code": code_services.url_prefix() + inner(world, 0)})
    assert done.status_code == 200, done.content
    assert done.json() == {
        "outcome": "rewarded",
        "message": "扫码成功，奖励 ¥0.80",
        "amount_fen": 80,
        "amount_yuan": "0.80",
        "today": 1,
        "cap": 3,
    }
    again = _post(_as(alpha, world.clerk2), "/t/clerk-scan/", {"code": inner(world, 0)})
    assert again.status_code == 409
    assert again.json()["code"] == "bottle_already_clerk_scanned"
    with tenant_context(beta.tenant):
        keyring.clear()
        theirs = code_services.create_batch(code_services.BatchRequest(bottles=2))
        beta_code = code_format.make(
            keyring.current_key(beta.tenant.number), code_format.Kind.INNER, theirs.first_bottle_serial or 0
        )
    refusals = {
        "not json": (400, "malformed_request"),
        "[1, 2]": (400, "malformed_request"),
        b"\xff\xfe": (400, "malformed_request"),
        json.dumps({"code": ""}): (400, "invalid_code"),
        json.dumps({"code": "junk"}): (400, "code_not_genuine"),
        json.dumps({"code": beta_code}): (400, "code_not_genuine"),
        json.dumps({"code": code_of(world, code_format.Kind.OUTER, 1)}): (400, "not_an_inner_code"),
    }
    for body, (status, code) in refusals.items():
        response = _post(clerk, "/t/clerk-scan/", body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert response.json()["message"]
    dealer = _post(_as(alpha, world.dealer_clerk), "/t/clerk-scan/", {"code": inner(world, 1)})
    assert (dealer.status_code, dealer.json()["code"]) == (403, "permission_denied")
    stranger = _post(Client(HTTP_HOST=alpha.host), "/t/clerk-scan/", {"code": inner(world, 1)})
    assert stranger.status_code == 401
    brand_staff = _post(alpha.client("warehouse"), "/t/clerk-scan/", {"code": inner(world, 1)})
    assert brand_staff.status_code == 403
    assert clerk.get("/t/clerk-scan/").status_code == 405
    with tenant_context(alpha.tenant):
        assert StoreEarning.objects.count() == 1


def test_the_earnings_page_shows_the_account_in_yuan_and_beijing_time(alpha: Brand, world: SimpleNamespace) -> None:
    _credit(world, world.clerk, 1234, "test:page")
    with tenant_context(alpha.tenant):
        StoreEarning.objects.filter(source="test:page").update(created_at=datetime(2026, 1, 31, 20, 5, tzinfo=UTC))
    clerk = _as(alpha, world.clerk)
    page = clerk.get("/t/earnings/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "¥12.34" in body
    assert "2026-02-01 04:05" in body  # Beijing time
    assert "+12.34" in body
    assert "2026-02-01 04:05" in clerk.get("/t/earnings/?month=2026-02").content.decode()
    assert "暂无记录" in clerk.get("/t/earnings/?month=2026-01").content.decode()
    for query in ("month=junk&page=99", "month=9999-12", "month=2026-13", "month=-1-1", "page=-3"):
        assert clerk.get(f"/t/earnings/?{query}").status_code == 200, query
    refused = clerk.get("/t/earnings/?account=store")
    assert refused.status_code == 403
    assert "只有店主" in refused.content.decode()
    owner = _as(alpha, world.owner).get("/t/earnings/?account=store")
    assert owner.status_code == 200
    assert 'data-account="store"' in owner.content.decode()
    assert _as(alpha, world.dealer_clerk).get("/t/earnings/").status_code == 403
    assert Client(HTTP_HOST=alpha.host).get("/t/earnings/").status_code == 302


def test_withdrawals_from_the_terminal(alpha: Brand, world: SimpleNamespace) -> None:
    clerk, owner = _as(alpha, world.clerk), _as(alpha, world.owner)
    not_mine = _post(clerk, "/t/withdraw/", {"account": "store", "amount_yuan": "5"})
    assert (not_mine.status_code, not_mine.json()["code"]) == (403, "not_account_holder")
    short = _post(clerk, "/t/withdraw/", {"account": "me", "amount_yuan": "5"})
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_balance")
    _credit(world, world.clerk, 800, "test:w1")
    _credit(world, None, 5000, "test:w2")
    for body, code in (
        ({"account": "me", "amount_yuan": "abc"}, "invalid_withdrawal_amount"),
        ({"account": "me", "amount_yuan": "5.555"}, "invalid_withdrawal_amount"),
        ({"account": "me", "amount_yuan": "1e400"}, "invalid_withdrawal_amount"),
        ({"account": "me", "amount_yuan": None}, "invalid_withdrawal_amount"),
        ({"account": "me", "amount_yuan": "4.99"}, "withdrawal_below_minimum"),
        ({"account": "nobody", "amount_yuan": "5"}, "not_account_holder"),
    ):
        response = _post(clerk, "/t/withdraw/", body)
        assert 400 <= response.status_code < 500, body
        assert response.json()["code"] == code, body
    assert _post(clerk, "/t/withdraw/", "{").status_code == 400
    made = _post(clerk, "/t/withdraw/", {"account": "me", "amount_yuan": "6.50"})
    assert made.status_code == 201, made.content
    assert (made.json()["amount_fen"], made.json()["balance_fen"]) == (650, 150)
    busy = _post(clerk, "/t/withdraw/", {"account": "me", "amount_yuan": "5"})
    assert (busy.status_code, busy.json()["code"]) == (409, "withdrawal_in_progress")
    by_owner = _post(owner, "/t/withdraw/", {"account": "store", "amount_fen": 5000})
    assert by_owner.status_code == 201, by_owner.content
    dealer = _post(_as(alpha, world.dealer_clerk), "/t/withdraw/", {"account": "me", "amount_yuan": "5"})
    assert dealer.status_code == 403
    assert _post(Client(HTTP_HOST=alpha.host), "/t/withdraw/", {"amount_yuan": "5"}).status_code == 401
    page = clerk.get("/t/earnings/").content.decode()
    assert "正在处理" in page
    assert "¥6.50" in page
    with tenant_context(alpha.tenant):
        rows = {(w.clerk_id, w.amount_fen, w.requested_by) for w in StoreWithdrawal.objects.all()}
        assert rows == {
            (world.clerk.pk, 650, world.clerk.user.username),
            (None, 5000, world.owner.user.username),
        }
        assert store_rewards.balance(world.store) == 0


def test_the_terminal_shows_the_clerks_and_the_owners_qr_codes(alpha: Brand, world: SimpleNamespace) -> None:
    mine = _as(alpha, world.clerk).get("/t/qr/me.png")
    assert mine.status_code == 200
    assert mine["Content-Type"] == "image/png"
    (url,) = _decoded(mine.content)
    # On the short code host, where the caps are scanned, naming the brand.
    code_host = urlsplit(settings.CODE_URL_PREFIX.lower()).netloc
    prefix = f"http://{code_host}/s/{alpha.tenant.number}/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix).rstrip("/")
    with tenant_context(alpha.tenant):
        tie = store_rewards.resolve_qr(token)
        assert tie is not None
        assert tie.clerk == world.clerk
    assert _as(alpha, world.clerk).get("/t/qr/store.png").status_code == 403
    store_png = _as(alpha, world.owner).get("/t/qr/store.png")
    assert _decoded(store_png.content) == [f"{prefix}{world.store.qr_token}/"]
    assert _as(alpha, world.dealer_clerk).get("/t/qr/me.png").status_code == 403
    assert Client(HTTP_HOST=alpha.host).get("/t/qr/me.png").status_code == 302


# --- the console -------------------------------------------------------------------------------------


def _act(client: Client, action: str, ids: list[int], **extra: str) -> Any:
    data: dict[str, Any] = {"action": action, "_selected_action": [str(pk) for pk in ids], **extra}
    return client.post(f"{ADMIN}/storewithdrawal/", data, follow=True)


def test_finance_decide_withdrawals_in_the_console(alpha: Brand, world: SimpleNamespace) -> None:
    _credit(world, None, 5000, "test:a1")
    _credit(world, world.clerk, 1000, "test:a2")
    with tenant_context(alpha.tenant):
        first = store_rewards.request_withdrawal(world.store, None, 3000, by="owner")
        second = store_rewards.request_withdrawal(world.store, world.clerk, 1000, by="clerk")
    owner = alpha.client("owner")
    listing = owner.get(f"{ADMIN}/storewithdrawal/").content.decode()
    for text in ("南明酒楼", "¥30.00", "待审核"):
        assert text in listing, text
    assert owner.get(f"{ADMIN}/storewithdrawal/add/").status_code == 403
    # Approve asks first, then approves.
    asked = owner.post(
        f"{ADMIN}/storewithdrawal/", {"action": "approve", "_selected_action": [str(first.pk)], "index": "0"}
    )
    assert 'data-confirm-action="approve"' in asked.content.decode()
    assert _act(owner, "approve", [first.pk], post="yes").status_code == 200
    # Mark paid needs a reference; reject needs a reason.
    form = _act(owner, "mark_paid", [first.pk], post="yes").content.decode()
    assert 'data-confirm-action="mark_paid"' in form
    _act(owner, "mark_paid", [first.pk], post="yes", note="BANK-2026-0001")
    _act(owner, "reject", [second.pk], post="yes", note="账户信息不符")
    again = _act(owner, "reject", [second.pk], post="yes", note="再驳回").content.decode()
    assert "不能这样处理" in again
    with tenant_context(alpha.tenant):
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.status, first.reference, first.decided_by) == (WithdrawalStatus.PAID, "BANK-2026-0001", "owner")
        assert (second.status, second.reason) == (WithdrawalStatus.REJECTED, "账户信息不符")
        assert store_rewards.balance(world.store, world.clerk) == 1000
        details = list(
            AuditEntry.objects.filter(object_type="rewards.storewithdrawal")
            .order_by("id")
            .values_list("detail", flat=True)
        )
        assert details == ["批准门店提现", "门店提现已打款", "驳回门店提现"]
    # Roles that may not change withdrawals cannot decide them.
    service = alpha.client("customer_service")
    assert _act(service, "approve", [second.pk], post="yes").status_code in (200, 403)
    with tenant_context(alpha.tenant):
        assert StoreWithdrawal.objects.get(pk=second.pk).status == WithdrawalStatus.REJECTED
        assert AuditEntry.objects.filter(object_type="rewards.storewithdrawal").count() == 3


def test_the_console_lists_earnings_and_each_stores_balances(alpha: Brand, world: SimpleNamespace) -> None:
    _credit(world, None, 1234, "test:b1")
    _credit(world, world.clerk, 300, "test:b2")
    _credit(world, world.clerk2, 200, "test:b3")
    owner = alpha.client("owner")
    ledger = owner.get(f"{ADMIN}/storeearning/").content.decode()
    for text in ("test:b1", "+¥12.34", "data-balances-link"):
        assert text in ledger, text
    assert owner.get(f"{ADMIN}/storeearning/?kind=adjustment&q=test:b2").status_code == 200
    assert owner.get(f"{ADMIN}/storeearning/add/").status_code == 403
    summary = owner.get(f"{ADMIN}/storeearning/balances/")
    assert summary.status_code == 200
    body = summary.content.decode()
    row = body[body.index('data-store="SR-S1"') :]
    assert "¥12.34" in row[:600]  # the store account
    assert "¥5.00" in row[:600]  # its clerks
    assert owner.get(f"{ADMIN}/storeearning/balances/?q=云岩").content.decode().count("data-store=") == 1
    assert owner.get(f"{ADMIN}/storerewardpolicy/").status_code == 200
    assert Client(HTTP_HOST=alpha.host).get(f"{ADMIN}/storeearning/balances/").status_code == 302


def test_the_qr_at_the_till_ties_cap_scans_on_the_short_code_host(
    alpha: Brand, beta: Brand, world: SimpleNamespace
) -> None:
    """Caps print the short code host: the store QR is served there too (routed by the brand number in
    its path), so its cookie reaches the cap pages."""
    with tenant_context(alpha.tenant):
        running_campaign([POINTS])
        token = store_rewards.clerk_token(world.clerk)
    consumer = signed_in(alpha, _consenting(alpha, "o-code-host"), CODE_HOST)
    page = consumer.get(f"/s/{alpha.tenant.number}/{token}/")
    assert page.status_code == 200
    assert "已关联门店" in page.content.decode()
    assert consumer.get(f"/C/{inner(world, 2)}").status_code == 200
    with tenant_context(alpha.tenant):
        claim = Claim.objects.get(serial=serial_of(world, 2))
        assert (claim.store_id, claim.clerk_id) == (world.store.pk, world.clerk.pk)
    # Another brand's number in the path: that brand does not know the token; no brand at all: 404.
    stranger = Client(HTTP_HOST=CODE_HOST)
    refused = stranger.get(f"/s/{beta.tenant.number}/{token}/")
    assert refused.status_code == 404
    assert not refused.cookies
    assert stranger.get(f"/s/99999/{token}/").status_code == 404
