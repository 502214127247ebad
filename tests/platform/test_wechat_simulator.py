"""The local WeChat (platform/local/wechat_simulator.py), driven by the real client libraries.

wechatpy's WeChatOAuth and wechatpayv3's WeChatPay talk to the simulator over HTTP on loopback with
only their base URLs changed, so these tests check that the simulator speaks what those libraries
send and verify: RSA-SHA256 request signatures, signed answers (wechatpayv3 raises when an answer's
signature does not verify), AES-256-GCM notifications opened by ``WeChatPay.callback``. No database.
"""

from __future__ import annotations

import html
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import build_authorization, rsa_sign
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from config.local_tools import local_module

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR_PATH = ROOT / "platform" / "local" / "wechat_simulator.py"

APPID = "wx5a3f1797dbe6b4d6"
SECRET = "3f9c1b7e2d4a6c8e0f1a3b5c7d9e1f20"
MCHID = "1900000109"
APIV3_KEY = "a12d3924fd499edac8a5efc0e1b2c3d4"  # 32 bytes: the AES-256-GCM key
SCENE_REPORT = [
    {"info_type": "活动名称", "info_content": "开瓶扫码有礼"},
    {"info_type": "奖励说明", "info_content": "扫码抽取现金红包"},
]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wechat() -> ModuleType:
    """The simulator loaded by path (platform/ is not a package), shared with other suites that load it."""
    return local_module("wechat_simulator")


@pytest.fixture(scope="module")
def creds(wechat: ModuleType) -> Any:
    return wechat.merchant_credentials()


@dataclass
class Sim:
    simulator: Any
    running: Any
    platform: Any  # PlatformKey of MCHID

    @property
    def base_url(self) -> str:
        return str(self.running.base_url)


@pytest.fixture
def sim(wechat: ModuleType, creds: Any) -> Iterator[Sim]:
    simulator = wechat.WeChatSimulator(
        timeout_seconds=1.0, notify_retry_schedule=(0.05, 0.1, 0.2), notify_timeout_seconds=2.0
    )
    running = simulator.start()
    simulator.add_official_account(APPID, SECRET)
    platform = simulator.add_merchant(
        MCHID,
        APPID,
        creds.public_key_pem,
        creds.cert_serial_no,
        APIV3_KEY,
        wechat.MerchantOptions(refund_delay_seconds=None),
    )
    try:
        yield Sim(simulator, running, platform)
    finally:
        simulator.close()


@dataclass
class Receiver:
    """A merchant's notify_url: records every POST and answers the queued statuses, then 200."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, count: int, timeout: float = 3.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"{len(self.received)} notifications received, expected {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.received.append((dict(self.headers.items()), body))
                status = state.statuses.popleft() if state.statuses else 200
            payload = b"" if status < 300 else json.dumps({"code": "FAIL", "message": "失败"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/wechat/notify"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _wxpay(sim: Sim, creds: Any, notify_url: str, *, platform: Any = None, timeout: Any = (2, 5)) -> WeChatPay:
    platform = platform or sim.platform
    client = WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=MCHID,
        private_key=creds.private_key_pem,
        cert_serial_no=creds.cert_serial_no,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        notify_url=notify_url,
        timeout=timeout,
        public_key=platform.public_key_pem,
        public_key_id=platform.public_key_id,
    )
    client._core._gate_way = sim.base_url
    return client


@pytest.fixture
def wxpay(sim: Sim, creds: Any, receiver: Receiver) -> WeChatPay:
    return _wxpay(sim, creds, receiver.url)


@pytest.fixture
def openid(wechat: ModuleType) -> str:
    return str(wechat.openid_for(APPID, "张三"))


def _oauth(sim: Sim, scope: str = "snsapi_userinfo", appid: str = APPID, secret: str = SECRET) -> WeChatOAuth:
    client = WeChatOAuth(appid, secret, "https://brand.example/m/wechat/callback?next=/cellar", scope=scope, state="s1")
    client.OAUTH_BASE_URL = sim.running.oauth_base_url
    client.API_BASE_URL = sim.running.api_base_url
    return client


def _approve(client: WeChatOAuth, user: str) -> str:
    """The consumer approves at once as `user` (sim_user): the code WeChat redirects back with."""
    url = client.authorize_url.split("#", 1)[0] + "&sim_user=" + quote(user)
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def _transfer(client: WeChatPay, out_bill_no: str, openid: str, amount: int = 888, **extra: Any) -> tuple[int, Any]:
    code, message = client.mch_transfer_bills(
        out_bill_no=out_bill_no,
        transfer_scene_id="1000",
        openid=openid,
        transfer_amount=amount,
        transfer_remark="开瓶扫码红包",
        user_recv_perception="活动奖励",
        transfer_scene_report_infos=SCENE_REPORT,
        **extra,
    )
    return code, json.loads(message) if message else None


def _query_bill(client: WeChatPay, out_bill_no: str) -> tuple[int, Any]:
    code, message = client.mch_transfer_bills_query(out_bill_no=out_bill_no)
    return code, json.loads(message)


def _order(client: WeChatPay, out_trade_no: str, openid: str, total: int = 49900) -> tuple[int, Any]:
    code, message = client.pay(
        description="飞天53度 500ml",
        out_trade_no=out_trade_no,
        amount={"total": total, "currency": "CNY"},
        payer={"openid": openid},
    )
    return code, json.loads(message)


def _callbacks(client: WeChatPay, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """The first `count` notifications, verified and decrypted by wechatpayv3 as a merchant would."""
    opened = []
    for headers, body in receiver.wait(count)[:count]:
        result = client.callback(headers, body)
        assert result is not None, "wechatpayv3 rejected the notification's signature or ciphertext"
        opened.append(result)
    return opened


def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --- web OAuth ---------------------------------------------------------------------------------


def test_oauth_dance_through_the_persona_page(sim: Sim, wechat: ModuleType) -> None:
    client = _oauth(sim)
    page = requests.get(client.authorize_url, timeout=5)
    assert page.status_code == 200
    assert "模拟微信授权" in page.text
    assert all(name in page.text for name in ("张三", "李四", "王五"))
    link = re.search(r'href="([^"]+)">以「李四」身份授权', page.text)
    assert link, page.text

    approved = requests.get(sim.base_url + html.unescape(link[1]), allow_redirects=False, timeout=5)
    assert approved.status_code == 302
    location = urlsplit(approved.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "brand.example", "/m/wechat/callback")
    query = parse_qs(location.query)
    assert query["next"] == ["/cellar"]
    assert query["state"] == ["s1"]

    token = client.fetch_access_token(query["code"][0])
    assert token["openid"] == wechat.openid_for(APPID, "李四")
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", token["openid"])
    assert token["scope"] == "snsapi_userinfo"
    assert token["expires_in"] == 7200
    assert token["unionid"] == wechat.unionid_for("李四")

    info = client.get_user_info()
    assert info["nickname"] == "李四"
    assert info["openid"] == token["openid"]
    assert info["unionid"] == token["unionid"]
    assert info["privilege"] == []
    avatar = requests.get(info["headimgurl"], timeout=5)
    assert avatar.status_code == 200
    assert avatar.headers["Content-Type"] == "image/svg+xml"
    assert client.check_access_token() is True

    # A code is single use (WeChat: 40163 code been used).
    with pytest.raises(WeChatOAuthException) as reused:
        client.fetch_access_token(query["code"][0])
    assert reused.value.errcode == 40163

    refreshed = client.refresh_access_token(token["refresh_token"])
    assert refreshed["openid"] == token["openid"]
    assert refreshed["access_token"] != token["access_token"]
    assert client.get_user_info()["nickname"] == "李四"


def test_oauth_refusals(sim: Sim, wechat: ModuleType) -> None:
    code = _approve(_oauth(sim), "王五")
    with pytest.raises(WeChatOAuthException) as bad_secret:
        _oauth(sim, secret="not-the-secret").fetch_access_token(code)
    assert bad_secret.value.errcode == 40125
    with pytest.raises(WeChatOAuthException) as unknown_app:
        _oauth(sim, appid="wx0000000000000000").fetch_access_token(code)
    assert unknown_app.value.errcode == 40013
    with pytest.raises(WeChatOAuthException) as unknown_code:
        _oauth(sim).fetch_access_token("0" * 32)
    assert unknown_code.value.errcode == 40029
    # The refusals above did not use the code up.
    assert _oauth(sim).fetch_access_token(code)["openid"] == wechat.openid_for(APPID, "王五")

    # Codes expire after five minutes.
    stale = _approve(_oauth(sim), "王五")
    sim.simulator.advance_clock(301)
    with pytest.raises(WeChatOAuthException) as expired:
        _oauth(sim).fetch_access_token(stale)
    assert expired.value.errcode == 40029

    # snsapi_base identifies silently but may not read the profile.
    base = _oauth(sim, scope="snsapi_base")
    token = base.fetch_access_token(_approve(base, "王五"))
    assert token["scope"] == "snsapi_base"
    with pytest.raises(WeChatOAuthException) as unauthorized:
        base.get_user_info()
    assert unauthorized.value.errcode == 48001
    with pytest.raises(WeChatOAuthException) as bad_token:
        base.get_user_info(access_token="forged")
    assert bad_token.value.errcode == 40001


def test_oauth_identity_is_per_app_but_unionid_is_per_person(sim: Sim) -> None:
    sim.simulator.add_official_account("wx1111111111111111", "other-secret")
    here = _oauth(sim)
    there = _oauth(sim, appid="wx1111111111111111", secret="other-secret")
    mine = here.fetch_access_token(_approve(here, "张三"))
    theirs = there.fetch_access_token(_approve(there, "张三"))
    someone_else = here.fetch_access_token(_approve(here, "李四"))
    assert mine["openid"] != theirs["openid"]
    assert mine["unionid"] == theirs["unionid"]
    assert someone_else["openid"] != mine["openid"]


def test_oauth_authorize_errors_and_denial(sim: Sim) -> None:
    unknown = _oauth(sim, appid="wx0000000000000000")
    page = requests.get(unknown.authorize_url, allow_redirects=False, timeout=5)
    assert page.status_code == 200
    assert page.headers["X-Sim-Errcode"] == "40013"
    assert "授权失败" in page.text

    bad_scope = _oauth(sim, scope="snsapi_login")
    assert requests.get(bad_scope.authorize_url, timeout=5).headers["X-Sim-Errcode"] == "10005"

    denied = requests.get(
        _oauth(sim).authorize_url.split("#")[0] + "&sim_user=%E5%BC%A0%E4%B8%89&sim_deny=1",
        allow_redirects=False,
        timeout=5,
    )
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {"next": ["/cellar"], "state": ["s1"]}

    sim.simulator.inject("error_500", "/sns/")
    with pytest.raises(WeChatOAuthException):
        _oauth(sim).fetch_access_token(_approve(_oauth(sim), "张三"))


# --- request and answer signatures -------------------------------------------------------------


def test_tampered_or_foreign_signatures_are_refused(sim: Sim, creds: Any, wechat: ModuleType, openid: str) -> None:
    path = "/v3/pay/transactions/jsapi"
    order = {
        "appid": APPID,
        "mchid": MCHID,
        "description": "飞天53度",
        "out_trade_no": "JM0000000001",
        "notify_url": "https://brand.example/wechat/notify",
        "amount": {"total": 49900, "currency": "CNY"},
        "payer": {"openid": openid},
    }
    private_key = _wxpay(sim, creds, "https://brand.example/n")._core._private_key
    authorization = build_authorization(path, "POST", MCHID, creds.cert_serial_no, private_key, data=order)

    def post(body: dict[str, Any], auth: str | None) -> requests.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        return requests.post(sim.base_url + path, data=json.dumps(body), headers=headers, timeout=5)

    tampered = post({**order, "amount": {"total": 1, "currency": "CNY"}}, authorization)
    assert tampered.status_code == 401
    assert tampered.json()["code"] == "SIGN_ERROR"
    assert post(order, None).status_code == 401

    stranger = wechat.merchant_credentials()
    foreign_key = _wxpay(sim, stranger, "https://brand.example/n")._core._private_key
    foreign = post(order, build_authorization(path, "POST", MCHID, creds.cert_serial_no, foreign_key, data=order))
    assert foreign.status_code == 401

    stale_ts = str(int(time.time()) - 600)
    signature = rsa_sign(private_key, f"POST\n{path}\n{stale_ts}\nNONCE\n{json.dumps(order)}\n")
    stale = post(
        order,
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="NONCE",signature="{signature}",'
        f'timestamp="{stale_ts}",serial_no="{creds.cert_serial_no}"',
    )
    assert stale.status_code == 401
    assert sim.simulator.payments() == []

    # The untampered request is accepted: the refusals were the signatures'.
    accepted = post(order, authorization)
    assert accepted.status_code == 200
    assert accepted.json()["prepay_id"].startswith("wx")


def test_answers_are_signed_with_the_merchants_platform_key(sim: Sim, creds: Any, openid: str) -> None:
    good = _wxpay(sim, creds, "https://brand.example/n")
    assert _order(good, "JM0000000002", openid)[0] == 200
    # A client holding another platform public key (under the same id) must reject the answer.
    other = sim.simulator.add_merchant("1900000110", APPID, creds.public_key_pem, "AB" * 20, APIV3_KEY)
    wrong = _wxpay(
        sim, creds, "https://brand.example/n", platform=type(other)(sim.platform.public_key_id, other.public_key_pem)
    )
    with pytest.raises(Exception, match="failed to verify the signature"):
        wrong.query(out_trade_no="JM0000000002")


# --- merchant transfers ------------------------------------------------------------------------


def test_transfer_bill_confirmed_by_the_consumer(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    code, created = _transfer(wxpay, "RP20260101000001", openid)
    assert code == 200, created
    assert created["state"] == "WAIT_USER_CONFIRM"
    assert created["package_info"]
    assert re.fullmatch(r"\d{34}", created["transfer_bill_no"])
    assert created["create_time"].endswith("+08:00")

    # Idempotent: the same bill again is the same bill; other content under the same number is refused.
    assert _transfer(wxpay, "RP20260101000001", openid) == (200, created)
    code, clash = _transfer(wxpay, "RP20260101000001", openid, amount=999)
    assert code == 400
    assert clash["code"] == "INVALID_REQUEST"
    assert len(sim.simulator.transfer_bills()) == 1

    code, waiting = _query_bill(wxpay, "RP20260101000001")
    assert code == 200
    assert waiting["state"] == "WAIT_USER_CONFIRM"
    assert waiting["mch_id"] == MCHID
    assert waiting["transfer_amount"] == 888
    assert waiting["openid"] == openid

    sim.simulator.confirm_transfer("RP20260101000001")
    code, done = _query_bill(wxpay, "RP20260101000001")
    assert done["state"] == "SUCCESS"
    code, by_number = wxpay.mch_transfer_bills_query(transfer_bill_no=created["transfer_bill_no"])
    assert code == 200
    assert json.loads(by_number)["state"] == "SUCCESS"

    [notification] = _callbacks(wxpay, receiver, 1)
    assert notification["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert notification["resource_type"] == "encrypt-resource"
    resource = notification["resource"]
    assert resource["out_bill_no"] == "RP20260101000001"
    assert resource["transfer_bill_no"] == created["transfer_bill_no"]
    assert resource["state"] == "SUCCESS"
    assert resource["transfer_amount"] == 888

    # A notification whose body was altered in transit does not verify.
    headers, body = receiver.received[0]
    assert wxpay.callback(headers, body.replace(b"MCHTRANSFER", b"MCHTRANSFEX")) is None

    code, missing = _query_bill(wxpay, "RP20260101000404")
    assert code == 404
    assert missing["code"] == "NOT_FOUND"


def test_transfer_cancel_expiry_and_auto_confirm(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    assert _transfer(wxpay, "RP20260101000010", openid)[0] == 200
    code, cancel = wxpay.mch_transfer_bills_cancel("RP20260101000010")
    assert code == 200
    assert json.loads(cancel)["state"] == "CANCELING"
    assert _query_bill(wxpay, "RP20260101000010")[1]["state"] == "CANCELLED"

    # WeChat cancels a bill the consumer leaves unconfirmed (24 hours).
    assert _transfer(wxpay, "RP20260101000011", openid)[0] == 200
    sim.simulator.advance_clock(86400 + 1)
    expired = _query_bill(wxpay, "RP20260101000011")[1]
    assert expired["state"] == "CANCELLED"
    assert expired["fail_reason"] == "OVERDUE_CLOSE"
    with pytest.raises(ValueError, match="CANCELLED"):
        sim.simulator.confirm_transfer("RP20260101000011")

    # The consumer authorised transfers without confirmation: accepted, then paid at once.
    sim.simulator.configure_merchant(MCHID, auto_confirm=True)
    code, accepted = _transfer(wxpay, "RP20260101000012", openid)
    assert accepted["state"] == "ACCEPTED"
    assert "package_info" not in accepted
    assert _query_bill(wxpay, "RP20260101000012")[1]["state"] == "SUCCESS"

    states = sorted((n["resource"]["out_bill_no"], n["resource"]["state"]) for n in _callbacks(wxpay, receiver, 3))
    assert states == [
        ("RP20260101000010", "CANCELLED"),
        ("RP20260101000011", "CANCELLED"),
        ("RP20260101000012", "SUCCESS"),
    ]


def test_transfer_limits(sim: Sim, wxpay: WeChatPay, wechat: ModuleType, openid: str) -> None:
    sim.simulator.configure_merchant(MCHID, transfer_rate_limit=2)
    codes = [_transfer(wxpay, f"RP2026010100003{i}", openid)[0] for i in range(3)]
    assert codes == [200, 200, 429]
    assert len(sim.simulator.transfer_bills()) == 2

    sim.simulator.configure_merchant(MCHID, transfer_rate_limit=None, balance=1500)
    assert _transfer(wxpay, "RP20260101000020", openid, amount=1000)[0] == 200
    code, broke = _transfer(wxpay, "RP20260101000021", openid, amount=1000)
    assert (code, broke["code"]) == (403, "NOT_ENOUGH")
    assert wxpay.mch_transfer_bills_cancel("RP20260101000020")[0] == 200  # the held 1000 comes back
    assert _transfer(wxpay, "RP20260101000021", openid, amount=1000)[0] == 200

    other = wechat.openid_for(APPID, "李四")
    sim.simulator.configure_merchant(MCHID, balance=None, per_user_daily_count=1)
    assert _transfer(wxpay, "RP20260101000022", other)[0] == 200
    code, quota = _transfer(wxpay, "RP20260101000023", other)
    assert (code, quota["code"]) == (403, "QUOTA_EXCEED")

    sim.simulator.configure_merchant(MCHID, per_user_daily_count=None, per_user_daily_amount=1500)
    assert _transfer(wxpay, "RP20260101000024", other, amount=600)[0] == 200
    code, amount = _transfer(wxpay, "RP20260101000025", other, amount=1000)
    assert (code, amount["code"]) == (403, "QUOTA_EXCEED")
    assert _transfer(wxpay, "RP20260101000025", other, amount=12)[0] == 200  # 888 + 600 + 12 = 1500


def test_transfer_user_name_is_decrypted_with_the_platform_key(sim: Sim, wxpay: WeChatPay, openid: str) -> None:
    # wechatpayv3 encrypts user_name with the platform public key and sends Wechatpay-Serial.
    code, created = _transfer(wxpay, "RP20260101000040", openid, amount=200000, user_name="张三")
    assert code == 200, created
    [bill] = sim.simulator.transfer_bills()
    assert bill["user_name"] == "张三"


# --- JSAPI payments and refunds ----------------------------------------------------------------


def test_jsapi_order_paid_by_the_consumer(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    code, created = _order(wxpay, "JM20260101000001", openid)
    assert code == 200
    assert created["prepay_id"].startswith("wx")
    assert _order(wxpay, "JM20260101000001", openid) == (200, created)
    code, clash = _order(wxpay, "JM20260101000001", openid, total=1)
    assert (code, clash["code"]) == (403, "OUT_TRADE_NO_USED")

    code, unpaid = wxpay.query(out_trade_no="JM20260101000001")
    unpaid = json.loads(unpaid)
    assert unpaid["trade_state"] == "NOTPAY"
    assert "transaction_id" not in unpaid

    with pytest.raises(ValueError, match="another payer"):
        sim.simulator.pay("JM20260101000001", "o" + "x" * 27)
    sim.simulator.pay("JM20260101000001", openid)
    paid = json.loads(wxpay.query(out_trade_no="JM20260101000001")[1])
    assert paid["trade_state"] == "SUCCESS"
    assert paid["amount"]["payer_total"] == 49900
    assert paid["payer"] == {"openid": openid}
    assert json.loads(wxpay.query(transaction_id=paid["transaction_id"])[1])["out_trade_no"] == "JM20260101000001"

    [notification] = _callbacks(wxpay, receiver, 1)
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    assert notification["resource"]["trade_state"] == "SUCCESS"
    assert notification["resource"]["transaction_id"] == paid["transaction_id"]
    assert notification["resource"]["amount"]["total"] == 49900

    code, closed = wxpay.close("JM20260101000001")
    assert (code, json.loads(closed)["code"]) == (400, "ORDERPAID")


def test_jsapi_order_closed_before_payment(sim: Sim, wxpay: WeChatPay, openid: str) -> None:
    assert _order(wxpay, "JM20260101000002", openid)[0] == 200
    assert wxpay.close("JM20260101000002") == (204, b"")
    assert json.loads(wxpay.query(out_trade_no="JM20260101000002")[1])["trade_state"] == "CLOSED"
    with pytest.raises(ValueError, match="CLOSED"):
        sim.simulator.pay("JM20260101000002", openid)
    code, missing = wxpay.query(out_trade_no="JM20260101000404")
    assert (code, json.loads(missing)["code"]) == (404, "ORDER_NOT_EXIST")


def test_refunds_never_exceed_the_paid_total(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    assert _order(wxpay, "JM20260101000003", openid)[0] == 200
    sim.simulator.pay("JM20260101000003", openid)

    def refund(number: str, amount: int) -> tuple[int, Any]:
        code, message = wxpay.refund(
            out_refund_no=number,
            amount={"refund": amount, "total": 49900, "currency": "CNY"},
            out_trade_no="JM20260101000003",
            reason="酒体破损",
        )
        return code, json.loads(message)

    code, first = refund("RF20260101000001", 20000)
    assert code == 200
    assert first["status"] == "PROCESSING"
    assert first["amount"]["refund"] == 20000
    assert refund("RF20260101000001", 20000)[1]["refund_id"] == first["refund_id"]
    code, over = refund("RF20260101000002", 30000)
    assert (code, over["code"]) == (400, "INVALID_REQUEST")
    assert refund("RF20260101000002", 29900)[0] == 200  # exactly what is left
    assert json.loads(wxpay.query(out_trade_no="JM20260101000003")[1])["trade_state"] == "REFUND"

    sim.simulator.complete_refund("RF20260101000001")
    code, done = wxpay.query_refund("RF20260101000001")
    assert json.loads(done)["status"] == "SUCCESS"
    notifications = _callbacks(wxpay, receiver, 2)
    refunded = [n for n in notifications if n["event_type"] == "REFUND.SUCCESS"]
    assert len(refunded) == 1
    assert refunded[0]["resource"]["out_refund_no"] == "RF20260101000001"
    assert refunded[0]["resource"]["refund_status"] == "SUCCESS"
    code, missing = wxpay.query_refund("RF20260101000404")
    assert (code, json.loads(missing)["code"]) == (404, "RESOURCE_NOT_EXISTS")


# --- faults ------------------------------------------------------------------------------------


def test_fault_timeout_applies_then_holds_the_answer(sim: Sim, creds: Any, receiver: Receiver, openid: str) -> None:
    impatient = _wxpay(sim, creds, receiver.url, timeout=(2, 0.3))
    patient = _wxpay(sim, creds, receiver.url)
    sim.simulator.configure(timeout_seconds=0.6)
    sim.simulator.inject("timeout", "/v3/fund-app/mch-transfer/transfer-bills")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        _transfer(impatient, "RP20260101000050", openid)
    assert time.monotonic() - started < 0.6
    assert _query_bill(patient, "RP20260101000050")[1]["state"] == "WAIT_USER_CONFIRM"  # it was applied

    sim.simulator.inject("timeout", "/v3/fund-app/mch-transfer/transfer-bills")
    started = time.monotonic()
    assert _transfer(patient, "RP20260101000050", openid)[0] == 200  # the retry is the same bill
    assert time.monotonic() - started >= 0.6
    assert len(sim.simulator.transfer_bills()) == 1


def test_fault_error_500_is_not_applied(sim: Sim, wxpay: WeChatPay, openid: str) -> None:
    sim.simulator.inject("error_500", "/v3/fund-app/")
    code, error = _transfer(wxpay, "RP20260101000060", openid)
    assert (code, error["code"]) == (500, "SYSTEM_ERROR")
    assert _query_bill(wxpay, "RP20260101000060")[0] == 404
    assert _transfer(wxpay, "RP20260101000060", openid)[0] == 200


def test_fault_lost_response_is_applied(sim: Sim, wxpay: WeChatPay, openid: str) -> None:
    sim.simulator.inject("lost_response", "/v3/pay/transactions/jsapi")
    with pytest.raises(requests.exceptions.ConnectionError):
        _order(wxpay, "JM20260101000070", openid)
    [order] = sim.simulator.payments()
    assert order["trade_state"] == "NOTPAY"
    assert _order(wxpay, "JM20260101000070", openid)[1]["prepay_id"] == order["prepay_id"]


def test_fault_rate_limit(sim: Sim, wxpay: WeChatPay, openid: str) -> None:
    sim.simulator.inject("rate_limit", "/v3/", times=2)
    assert _transfer(wxpay, "RP20260101000080", openid)[1]["code"] == "FREQUENCY_LIMITED"
    code, message = wxpay.mch_transfer_bills_query(out_bill_no="RP20260101000080")
    assert (code, json.loads(message)["code"]) == (429, "FREQUENCY_LIMITED")
    assert sim.simulator.transfer_bills() == []
    assert _transfer(wxpay, "RP20260101000080", openid)[0] == 200


# --- notification faults -----------------------------------------------------------------------


def test_notification_duplicated(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    sim.simulator.inject_notification("duplicate")
    assert _transfer(wxpay, "RP20260101000090", openid)[0] == 200
    sim.simulator.confirm_transfer("RP20260101000090")
    first, second = _callbacks(wxpay, receiver, 2)
    assert first["id"] == second["id"]
    assert first["resource"] == second["resource"]
    assert sim.simulator.wait_idle(3)
    [note] = sim.simulator.notifications()
    assert (note["fault"], note["deliveries"], note["state"]) == ("duplicate", 2, "delivered")


def test_notification_retried_after_a_500(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    receiver.statuses.append(500)
    assert _transfer(wxpay, "RP20260101000100", openid)[0] == 200
    sim.simulator.confirm_transfer("RP20260101000100")
    first, second = _callbacks(wxpay, receiver, 2)
    assert first == second
    assert sim.simulator.wait_idle(3)
    [note] = sim.simulator.notifications()
    assert [a["status"] for a in note["attempts"]] == [500, 200]
    assert note["state"] == "delivered"


def test_notification_dropped_delayed_and_given_up(sim: Sim, wxpay: WeChatPay, receiver: Receiver, openid: str) -> None:
    sim.simulator.inject_notification("drop")
    assert _transfer(wxpay, "RP20260101000110", openid)[0] == 200
    sim.simulator.confirm_transfer("RP20260101000110")
    sim.simulator.inject_notification("delay", delay_seconds=0.5)
    assert _transfer(wxpay, "RP20260101000111", openid)[0] == 200
    sim.simulator.confirm_transfer("RP20260101000111")
    time.sleep(0.3)
    assert receiver.received == []
    [delayed] = _callbacks(wxpay, receiver, 1)
    assert delayed["resource"]["out_bill_no"] == "RP20260101000111"
    time.sleep(0.2)
    assert len(receiver.received) == 1  # the dropped one never comes

    # A receiver that never answers 2xx gets the first try and every retry of the schedule, then no more.
    receiver.statuses.extend([503] * 10)
    assert _transfer(wxpay, "RP20260101000112", openid)[0] == 200
    sim.simulator.confirm_transfer("RP20260101000112")
    assert sim.simulator.wait_idle(3)
    notes = {n["resource"]["out_bill_no"]: n for n in sim.simulator.notifications()}
    assert notes["RP20260101000110"]["state"] == "dropped"
    assert notes["RP20260101000111"]["state"] == "delivered"
    assert notes["RP20260101000112"]["state"] == "failed"
    assert [a["status"] for a in notes["RP20260101000112"]["attempts"]] == [503, 503, 503, 503]


# --- out of process ----------------------------------------------------------------------------


def test_cli_and_control_api(creds: Any, openid: str) -> None:
    process = subprocess.Popen(
        [sys.executable, str(SIMULATOR_PATH), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"wechat simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        base = match[1]

        def control(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            answer = requests.request(method, base + path, json=body, timeout=5)
            assert answer.status_code == 200, answer.text
            return answer.json()

        control("POST", "/_sim/official-accounts", {"appid": APPID, "secret": SECRET})
        platform = control(
            "POST",
            "/_sim/merchants",
            {
                "mchid": MCHID,
                "appid": APPID,
                "merchant_public_key_pem": creds.public_key_pem,
                "merchant_cert_serial_no": creds.cert_serial_no,
                "apiv3_key": APIV3_KEY,
            },
        )
        assert platform["public_key_id"].startswith("PUB_KEY_ID_")
        client = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=MCHID,
            private_key=creds.private_key_pem,
            cert_serial_no=creds.cert_serial_no,
            appid=APPID,
            apiv3_key=APIV3_KEY,
            notify_url="http://127.0.0.1:9/unreachable",
            timeout=(2, 5),
            public_key=platform["public_key_pem"],
            public_key_id=platform["public_key_id"],
        )
        client._core._gate_way = base
        assert _transfer(client, "RP20260101000120", openid)[0] == 200
        assert control("POST", "/_sim/transfers/RP20260101000120/confirm")["state"] == "SUCCESS"
        assert _query_bill(client, "RP20260101000120")[1]["state"] == "SUCCESS"

        assert _order(client, "JM20260101000120", openid)[0] == 200
        assert control("POST", "/_sim/payments/JM20260101000120/pay", {"openid": openid})["trade_state"] == "SUCCESS"

        control("POST", "/_sim/faults", {"fault": "rate_limit", "path_prefix": "/v3/pay/"})
        assert client.query(out_trade_no="JM20260101000120")[0] == 429
        assert client.query(out_trade_no="JM20260101000120")[0] == 200

        state = control("GET", "/_sim/state")
        assert [b["state"] for b in state["transfer_bills"]] == ["SUCCESS"]
        assert [p["trade_state"] for p in state["payments"]] == ["SUCCESS"]
        assert state["faults"] == []
        assert {n["event_type"] for n in state["notifications"]} == {"MCHTRANSFER.BILL.FINISHED", "TRANSACTION.SUCCESS"}
        bad = requests.post(base + "/_sim/faults", json={"fault": "meteor", "path_prefix": "/"}, timeout=5)
        assert bad.status_code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=5) == 0
        finally:
            process.kill()
            process.communicate()
