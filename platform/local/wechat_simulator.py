"""A local WeChat: web OAuth (公众号网页授权) and WeChat Pay APIv3, spoken over real HTTP on loopback.

The project's adapters are the real client libraries (wechatpy's ``WeChatOAuth``, wechatpayv3's
``WeChatPay``); the demo and the tests point them here by changing only their base URLs, so every
byte they send and verify is what they would send to and verify from WeChat: RSA-SHA256 request
signatures checked against the merchant's registered public key, responses and notifications signed
with a per-merchant platform key ("public key mode", no certificate download), notification
resources encrypted with AES-256-GCM under the merchant's APIv3 key.

Run by path (``platform/`` is deliberately not a package: one named ``platform`` would shadow the
stdlib module)::

    .venv/bin/python platform/local/wechat_simulator.py --port 8765    # 0 = any free port

It prints ``wechat simulator listening on http://127.0.0.1:<port>`` and serves until SIGINT/SIGTERM.
Tests load it by path (importlib) and run it in-process::

    sim = WeChatSimulator(notify_retry_schedule=(0.05, 0.1))
    with sim.start() as running:                      # running.base_url = "http://127.0.0.1:<port>"
        sim.add_official_account("wx0001", "secret")
        creds = merchant_credentials()
        platform_key = sim.add_merchant("1900000001", "wx0001", creds.public_key_pem,
                                        creds.cert_serial_no, "0123456789abcdef0123456789abcdef")

Endpoints (base URL = the simulator's):

* OAuth: ``/connect/oauth2/authorize`` (wechatpy's ``OAUTH_BASE_URL`` = ``<base>/connect/``),
  ``/sns/oauth2/access_token``, ``/sns/oauth2/refresh_token``, ``/sns/userinfo``, ``/sns/auth``
  (``API_BASE_URL`` = ``<base>/``). The authorize page is HTML; an unknown appid or a bad parameter
  gives WeChat's kind of error page with HTTP 200 (the errcode is in the page and in the
  ``X-Sim-Errcode`` header). ``sim_user=<name>`` approves at once for that person.
* Pay (wechatpayv3's ``_core._gate_way`` = ``<base>``): merchant transfers
  (``/v3/fund-app/mch-transfer/transfer-bills`` and its queries and cancel), JSAPI orders
  (``/v3/pay/transactions/jsapi``, query by out-trade-no or id, close), refunds
  (``/v3/refund/domestic/refunds``, query).
* Control (``/_sim/...``, JSON, unsigned): register accounts and merchants, act as the consumer
  (confirm a transfer, pay an order), inject faults, read the whole state. See ``_CONTROL_ROUTES``.

What is simulated of WeChat's behaviour, and why:

* Transfers wait for the consumer (WAIT_USER_CONFIRM) unless the merchant was set to ``auto_confirm``
  (the consumer authorised transfers without confirmation: ACCEPTED, then SUCCESS at once). A bill
  left unconfirmed for ``confirm_timeout_seconds`` is cancelled by WeChat, as the real one is after
  24 hours; a cancel request answers CANCELING and the bill becomes CANCELLED after
  ``cancel_delay_seconds`` (0: at once). Final states notify ``MCHTRANSFER.BILL.FINISHED``.
* Limits per merchant (``MerchantOptions``): transfer creations per second (429 FREQUENCY_LIMITED,
  WeChat's documented 100/s by default), per consumer per day count and amount (403 QUOTA_EXCEED),
  an operating balance in fen (403 NOT_ENOUGH; held by open bills, returned when they are cancelled).
* Faults (``inject``): ``timeout`` (apply, then hold the answer ``timeout_seconds``),
  ``error_500`` (answer SYSTEM_ERROR, not applied), ``lost_response`` (apply, then close the socket
  without answering), ``rate_limit`` (429 FREQUENCY_LIMITED, not applied). Notification faults
  (``inject_notification``): ``duplicate``, ``drop``, ``delay``.
* Notifications are delivered from a background worker; a non-2xx answer or a connection error is
  retried after each delay of ``notify_retry_schedule`` (WeChat's own schedule, 15 s ... 6 h, is
  ``WECHAT_NOTIFY_RETRY_SCHEDULE``; the default here is short so a demo sees retries). Every
  attempt is recorded.

Where it knowingly differs from WeChat:

* ``notify_url`` may be http (receivers on loopback); WeChat requires https.
* Where WeChat's exact answer is not public, the closest documented one is used: per-consumer
  quotas answer 403 QUOTA_EXCEED at creation (WeChat may instead fail the bill later with
  DAY_RECEIVED_QUOTA_EXCEED / DAY_RECEIVED_COUNT_EXCEED), an unconfirmed bill is cancelled with
  fail_reason OVERDUE_CLOSE, and every Authorization problem is 401 SIGN_ERROR.
* The consumer's side of JSAPI (``wx.chooseWXPay``, its paySign) and of transfers
  (``wx.requestMerchantTransfer``, package_info) is not simulated: ``pay`` and ``confirm_transfer``
  (or their ``/_sim`` endpoints) stand for it. Openids are not checked against the appid.

The library part never prints; only the CLI (``main``) does.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import heapq
import html
import http.client
import itertools
import json
import logging
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("jiuma.wechat_simulator")

CST = timezone(timedelta(hours=8), "Asia/Shanghai")  # every WeChat timestamp is +08:00
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW_SECONDS = 300  # WeChat refuses a request timestamp more than 5 minutes off

OAUTH_CODE_TTL_SECONDS = 300
ACCESS_TOKEN_TTL_SECONDS = 7200
REFRESH_TOKEN_TTL_SECONDS = 30 * 86400
PERSONAS = ("张三", "李四", "王五")

FAULTS = ("timeout", "error_500", "lost_response", "rate_limit")
NOTIFICATION_FAULTS = ("duplicate", "drop", "delay")

DEFAULT_NOTIFY_RETRY_SCHEDULE: tuple[float, ...] = (0.2, 1.0, 5.0)
# What WeChat Pay documents for its notifications (seconds): 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h.
WECHAT_NOTIFY_RETRY_SCHEDULE: tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip

# fail_reason of a bill the consumer never confirmed. WeChat cancels such bills after 24 h; the
# exact reason code it reports for that case is not public in the material we had, so this is the
# closest documented one ("超过系统重试期，系统自动关闭").
UNCONFIRMED_FAIL_REASON = "OVERDUE_CLOSE"

TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "转入退款",
}
_ALNUM = string.ascii_letters + string.digits
_OUT_BILL_NO = re.compile(r"[0-9A-Za-z]{1,32}")
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


class SimulatorError(ValueError):
    """A misuse of the in-process or control API (unknown bill, wrong state, bad option)."""


class ApiError(Exception):
    """A WeChat Pay APIv3 error answer: HTTP status and a JSON body {"code", "message"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class _OAuthError(Exception):
    """A WeChat OAuth error answer: HTTP 200 with {"errcode", "errmsg"} (WeChat never uses the status)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


# --- keys and credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformKey:
    """What a merchant configures wechatpayv3 with: ``WeChatPay(public_key=..., public_key_id=...)``.

    ``public_key_pem`` is a str because wechatpayv3 formats the key as text before loading it.
    """

    public_key_id: str
    public_key_pem: str


@dataclass(frozen=True)
class MerchantCredentials:
    """A merchant API key pair and certificate serial number, for tests and the demo."""

    private_key_pem: str  # PKCS#8, what wechatpayv3's private_key expects
    public_key_pem: str
    cert_serial_no: str  # 40 upper-case hex digits, like a real merchant API certificate's


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def merchant_credentials() -> MerchantCredentials:
    """A fresh merchant RSA-2048 key pair and serial: what a merchant downloads from its platform."""
    key = _new_rsa_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return MerchantCredentials(
        private_key_pem=private_pem, public_key_pem=_public_pem(key), cert_serial_no=secrets.token_hex(20).upper()
    )


def _load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        if b"BEGIN CERTIFICATE" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SimulatorError(f"not a PEM public key or certificate: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SimulatorError("the merchant key must be RSA")
    return key


def _rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _transfer_bill_no(now: float) -> str:
    """34 digits, like "1330007812007702509230017332919998" (prefix, merchant part, date, sequence)."""
    return "1330" + _random_digits(6) + datetime.fromtimestamp(now, CST).strftime("%y%m%d") + _random_digits(18)


def _random_digits(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def _iso(ts: float) -> str:
    """RFC 3339 at +08:00, the way WeChat writes every time."""
    return datetime.fromtimestamp(ts, tz=CST).isoformat(timespec="seconds")


def _json_bytes(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _fingerprint(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)


def _hash_id(prefix: str, text: str) -> str:
    """The letter o and 27 url-safe base64 characters: the shape (28 characters) of WeChat's openids."""
    digest = hashlib.sha256(f"{prefix}:{text}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


def openid_for(appid: str, user: str) -> str:
    """The openid a person has under an official account: stable per (appid, person), as in WeChat."""
    return _hash_id(f"openid:{appid}", user)


def unionid_for(user: str) -> str:
    """The unionid of a person: the same under every appid (one open-platform account)."""
    return _hash_id("unionid", user)


# --- state -------------------------------------------------------------------------------------


@dataclass
class MerchantOptions:
    """Per-merchant behaviour and limits. ``None`` means no limit."""

    # The consumer authorised transfers without confirmation: bills go ACCEPTED -> SUCCESS at once.
    auto_confirm: bool = False
    # Transfer creations per second (WeChat documents 100/s per merchant); beyond: 429 FREQUENCY_LIMITED.
    transfer_rate_limit: int | None = 100
    # Per consumer (openid) per day (Asia/Shanghai), bills not cancelled or failed; beyond: 403 QUOTA_EXCEED.
    per_user_daily_count: int | None = None
    per_user_daily_amount: int | None = None  # fen
    # Operating account balance in fen that transfers draw on; insufficient: 403 NOT_ENOUGH.
    balance: int | None = None
    # A bill waiting for the consumer this long is cancelled by WeChat (24 h in reality).
    confirm_timeout_seconds: float = 86400.0
    # A cancel request answers CANCELING; the bill is CANCELLED this much later (0: at once).
    cancel_delay_seconds: float = 0.0
    # A refund is PROCESSING this long, then SUCCESS; None: only complete_refund() finishes it.
    refund_delay_seconds: float | None = 1.0


@dataclass
class _Merchant:
    mchid: str
    appid: str
    public_key: rsa.RSAPublicKey
    serial_no: str
    apiv3_key: str
    platform_key: rsa.RSAPrivateKey
    public_key_id: str
    options: MerchantOptions
    transfer_posts: deque[float] = field(default_factory=deque)

    @property
    def platform(self) -> PlatformKey:
        return PlatformKey(self.public_key_id, _public_pem(self.platform_key))


@dataclass
class _Account:
    appid: str
    secret: str
    oauth_domains: tuple[str, ...] | None


@dataclass
class _Grant:
    """An authorisation code, an access token or a refresh token: who, for which app, which scope."""

    appid: str
    user: str
    scope: str
    expires_at: float
    used: bool = False

    @property
    def openid(self) -> str:
        return openid_for(self.appid, self.user)


@dataclass
class _Bill:
    mchid: str
    appid: str
    out_bill_no: str
    transfer_bill_no: str
    transfer_scene_id: str
    openid: str
    transfer_amount: int
    transfer_remark: str
    user_name: str | None
    user_recv_perception: str | None
    report_infos: list[dict[str, str]]
    notify_url: str | None
    fingerprint: str
    created: float
    updated: float
    package_info: str
    state: str = "WAIT_USER_CONFIRM"
    fail_reason: str | None = None
    cancel_due: float | None = None

    def view(self) -> dict[str, Any]:
        """The query answer (商户单号查询转账单)."""
        out: dict[str, Any] = {
            "mch_id": self.mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "appid": self.appid,
            "state": self.state,
            "transfer_amount": self.transfer_amount,
            "transfer_remark": self.transfer_remark,
            "openid": self.openid,
            "create_time": _iso(self.created),
            "update_time": _iso(self.updated),
        }
        if self.fail_reason:
            out["fail_reason"] = self.fail_reason
        return out


@dataclass
class _Payment:
    mchid: str
    appid: str
    out_trade_no: str
    description: str
    notify_url: str
    total: int
    currency: str
    openid: str
    attach: str | None
    time_expire: str | None
    expire_at: float | None
    fingerprint: str
    prepay_id: str
    created: float
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: float | None = None

    def view(self) -> dict[str, Any]:
        """The query answer (商户订单号查询订单)."""
        out: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.trade_state,
            "trade_state_desc": TRADE_STATE_DESC[self.trade_state],
            "payer": {"openid": self.openid},
            "amount": {"total": self.total, "currency": self.currency, "payer_currency": self.currency},
        }
        if self.attach is not None:
            out["attach"] = self.attach
        if self.transaction_id is not None:
            out["transaction_id"] = self.transaction_id
            out["bank_type"] = "OTHERS"
            out["amount"]["payer_total"] = self.total
        if self.success_time is not None:
            out["success_time"] = _iso(self.success_time)
        return out


@dataclass
class _Refund:
    mchid: str
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    reason: str | None
    notify_url: str | None
    refund: int
    total: int
    currency: str
    fingerprint: str
    created: float
    complete_due: float | None
    status: str = "PROCESSING"
    success_time: float | None = None

    def view(self) -> dict[str, Any]:
        """The create and query answer (申请退款 / 查询单笔退款)."""
        out: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _iso(self.created),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.total,
                "payer_refund": self.refund,
                "settlement_total": self.total,
                "settlement_refund": self.refund,
                "discount_refund": 0,
                "currency": self.currency,
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if self.success_time is not None:
            out["success_time"] = _iso(self.success_time)
        return out


@dataclass
class _Attempt:
    track: int  # 0, or 1 for the second copy of a duplicated notification
    number: int  # 0 = first try, then one per retry
    at: str
    status: int | None
    error: str | None
    elapsed_ms: int


@dataclass
class _Notification:
    id: str
    mchid: str
    event_type: str
    summary: str
    notify_url: str
    resource: dict[str, Any]  # the plaintext that was encrypted
    body: bytes
    created: str
    fault: str | None
    tracks: int
    state: str = "pending"  # pending | delivered | failed | dropped
    delivered_tracks: int = 0
    failed_tracks: int = 0
    attempts: list[_Attempt] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mchid": self.mchid,
            "event_type": self.event_type,
            "summary": self.summary,
            "notify_url": self.notify_url,
            "state": self.state,
            "fault": self.fault,
            "created": self.created,
            "resource": self.resource,
            "body": self.body.decode(),
            "deliveries": sum(1 for a in self.attempts if a.status is not None and 200 <= a.status < 300),
            "attempts": [asdict(a) for a in self.attempts],
        }


@dataclass
class _Fault:
    fault: str
    path_prefix: str
    remaining: int


@dataclass
class _NotificationFault:
    fault: str
    remaining: int
    delay_seconds: float


# --- background work ---------------------------------------------------------------------------


class _Worker:
    """One thread: runs due jobs (each in its own daemon thread, so a slow receiver blocks nothing)
    and calls ``tick`` every ``interval`` seconds (time-driven state changes)."""

    def __init__(self, tick: Callable[[], None], interval: float = 0.05) -> None:
        self._tick = tick
        self._interval = interval
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="wechat-sim-worker", daemon=True)
        self._thread.start()

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._jobs, (time.monotonic() + max(0.0, delay), next(self._seq), job))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._jobs.clear()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                due: list[Callable[[], None]] = []
                while self._jobs and self._jobs[0][0] <= now:
                    due.append(heapq.heappop(self._jobs)[2])
                if not due:
                    wait = self._interval if not self._jobs else min(self._interval, self._jobs[0][0] - now)
                    self._cond.wait(max(wait, 0.001))
            for job in due:
                threading.Thread(target=job, name="wechat-sim-job", daemon=True).start()
            try:
                self._tick()
            except Exception:
                log.exception("wechat simulator: time-driven update failed")


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int | None, str | None]:
    """POST a notification: (status, None), or (None, error) when no answer came.

    http.client rather than urllib.request: urllib re-cases header names ("Wechatpay-signature") and
    follows redirects, WeChat does neither (a 3xx is a failed delivery).
    """
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path or "/", body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read()
        return int(response.status), None
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


# --- HTTP plumbing -----------------------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    target: str  # the request target exactly as received: path and query (what the signature covers)
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # how the client reached us, for links in pages

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False  # close the connection without answering (lost_response)
    hold_seconds: float = 0.0  # wait this long before answering (timeout)


def _json_response(status: int, payload: object, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(status, _json_bytes(payload), content_type)


def _oauth_json(payload: object) -> HttpResponse:
    return _json_response(200, payload, "application/json; encoding=utf-8")


_Route = tuple[str, re.Pattern[str], str]


def _routes(*entries: tuple[str, str, str]) -> list[_Route]:
    return [(method, re.compile(pattern), name) for method, pattern, name in entries]


_PAY_ROUTES = _routes(
    ("POST", r"/v3/fund-app/mch-transfer/transfer-bills", "_transfer_create"),
    ("GET", r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/(?P<no>[^/]+)", "_transfer_query_out"),
    ("GET", r"/v3/fund-app/mch-transfer/transfer-bills/transfer-bill-no/(?P<no>[^/]+)", "_transfer_query_no"),
    ("POST", r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/(?P<no>[^/]+)/cancel", "_transfer_cancel"),
    ("POST", r"/v3/pay/transactions/jsapi", "_jsapi_create"),
    ("GET", r"/v3/pay/transactions/out-trade-no/(?P<no>[^/]+)", "_payment_query_out"),
    ("GET", r"/v3/pay/transactions/id/(?P<no>[^/]+)", "_payment_query_id"),
    ("POST", r"/v3/pay/transactions/out-trade-no/(?P<no>[^/]+)/close", "_payment_close"),
    ("POST", r"/v3/refund/domestic/refunds", "_refund_create"),
    ("GET", r"/v3/refund/domestic/refunds/(?P<no>[^/]+)", "_refund_query"),
)

_CONTROL_ROUTES = _routes(
    ("GET", r"/_sim/state", "_c_state"),
    ("GET", r"/_sim/notifications", "_c_notifications"),
    ("GET", r"/_sim/transfers", "_c_transfers"),
    ("GET", r"/_sim/payments", "_c_payments"),
    ("GET", r"/_sim/refunds", "_c_refunds"),
    ("GET", r"/_sim/avatar/(?P<key>[^/]+)\.svg", "_c_avatar"),
    ("POST", r"/_sim/official-accounts", "_c_add_account"),
    ("POST", r"/_sim/merchant-credentials", "_c_credentials"),
    ("POST", r"/_sim/merchants", "_c_add_merchant"),
    ("POST", r"/_sim/merchants/(?P<key>[^/]+)/options", "_c_merchant_options"),
    ("POST", r"/_sim/transfers/(?P<key>[^/]+)/confirm", "_c_confirm"),
    ("POST", r"/_sim/transfers/(?P<key>[^/]+)/fail", "_c_fail"),
    ("POST", r"/_sim/payments/(?P<key>[^/]+)/pay", "_c_pay"),
    ("POST", r"/_sim/refunds/(?P<key>[^/]+)/complete", "_c_complete_refund"),
    ("POST", r"/_sim/faults", "_c_fault"),
    ("POST", r"/_sim/notification-faults", "_c_notification_fault"),
    ("DELETE", r"/_sim/faults", "_c_clear_faults"),
    ("POST", r"/_sim/settings", "_c_settings"),
    ("POST", r"/_sim/clock", "_c_clock"),
)


def _match(routes: Iterable[_Route], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The handler name and path parameters; None when no route has the path, ("", {}) for a wrong method."""
    found_path = False
    for route_method, pattern, name in routes:
        m = pattern.fullmatch(path)
        if m:
            found_path = True
            if route_method == method:
                return name, {key: unquote(value) for key, value in m.groupdict().items()}
    return ("", {}) if found_path else None


# --- the simulator -----------------------------------------------------------------------------


class WeChatSimulator:
    """All of WeChat's state behind one lock; ``start()`` serves it over HTTP (any number of times)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        notify_retry_schedule: Iterable[float] = DEFAULT_NOTIFY_RETRY_SCHEDULE,
        notify_timeout_seconds: float = 5.0,
    ) -> None:
        self.timeout_seconds = float(timeout_seconds)  # how long the "timeout" fault holds an answer
        self.notify_retry_schedule = tuple(float(s) for s in notify_retry_schedule)
        self.notify_timeout_seconds = float(notify_timeout_seconds)  # per delivery attempt
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._accounts: dict[str, _Account] = {}
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._users_by_openid: dict[str, str] = {}
        self._merchants: dict[str, _Merchant] = {}
        self._bills: dict[tuple[str, str], _Bill] = {}
        self._bills_by_no: dict[str, tuple[str, str]] = {}
        self._payments: dict[tuple[str, str], _Payment] = {}
        self._payments_by_id: dict[str, tuple[str, str]] = {}
        self._refunds: dict[tuple[str, str], _Refund] = {}
        self._notifications: dict[str, _Notification] = {}
        self._faults: list[_Fault] = []
        self._notification_faults: list[_NotificationFault] = []
        self._running: list[RunningSimulator] = []
        # Signs answers to requests whose merchant is unknown (nobody can verify those anyway).
        self._fallback_key: rsa.RSAPrivateKey | None = None
        self._worker = _Worker(self._sweep)

    # -- lifecycle --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
        server = _Server((host, port), self)
        running = RunningSimulator(self, server)
        with self._lock:
            self._running.append(running)
        return running

    def close(self) -> None:
        """Stop every server started from this simulator and the background worker."""
        with self._lock:
            running, self._running = self._running, []
        for item in running:
            item.stop()
        self._worker.stop()

    def __enter__(self) -> WeChatSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- time --

    def now(self) -> float:
        """The simulator's wall clock (epoch seconds): real time plus ``advance_clock`` offsets.

        It drives code and token expiry, the unconfirmed-bill cap, refund delays and "per day". Request
        signatures are still checked against real time: the client signs with the real clock.
        """
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += float(seconds)
        self._sweep()

    def configure(
        self,
        *,
        timeout_seconds: float | None = None,
        notify_retry_schedule: Iterable[float] | None = None,
        notify_timeout_seconds: float | None = None,
    ) -> None:
        with self._lock:
            if timeout_seconds is not None:
                self.timeout_seconds = float(timeout_seconds)
            if notify_retry_schedule is not None:
                self.notify_retry_schedule = tuple(float(s) for s in notify_retry_schedule)
            if notify_timeout_seconds is not None:
                self.notify_timeout_seconds = float(notify_timeout_seconds)

    # -- registration --

    def add_official_account(self, appid: str, secret: str, oauth_domains: Iterable[str] | None = None) -> None:
        """An official account (公众号). ``oauth_domains``: its 网页授权域名; None accepts any redirect host."""
        if not appid or not secret:
            raise SimulatorError("appid and secret are required")
        domains = tuple(d.lower() for d in oauth_domains) if oauth_domains is not None else None
        with self._lock:
            self._accounts[appid] = _Account(appid, secret, domains)

    def add_merchant(
        self,
        mchid: str,
        appid: str,
        merchant_public_key_pem: bytes | str,
        merchant_cert_serial_no: str,
        apiv3_key: str,
        options: MerchantOptions | None = None,
    ) -> PlatformKey:
        """A WeChat Pay merchant bound to ``appid``. Registering the same mchid again updates it and keeps
        its platform key (so a demo restarting against a long-running simulator keeps working)."""
        if not mchid or not appid or not merchant_cert_serial_no:
            raise SimulatorError("mchid, appid and merchant_cert_serial_no are required")
        if len(apiv3_key.encode()) != 32:
            raise SimulatorError("the APIv3 key must be 32 bytes (it is the AES-256-GCM key)")
        public_key = _load_public_key(merchant_public_key_pem)
        with self._lock:
            existing = self._merchants.get(mchid)
            merchant = _Merchant(
                mchid=mchid,
                appid=appid,
                public_key=public_key,
                serial_no=merchant_cert_serial_no.upper(),
                apiv3_key=apiv3_key,
                platform_key=existing.platform_key if existing else _new_rsa_key(),
                public_key_id=existing.public_key_id if existing else "PUB_KEY_ID_" + secrets.token_hex(16).upper(),
                options=replace(options) if options else (existing.options if existing else MerchantOptions()),
            )
            self._merchants[mchid] = merchant
            return merchant.platform

    def configure_merchant(self, mchid: str, **changes: Any) -> MerchantOptions:
        """Change some of a merchant's ``MerchantOptions`` (e.g. ``balance=1000``, ``auto_confirm=True``)."""
        names = {f.name for f in fields(MerchantOptions)}
        unknown = set(changes) - names
        if unknown:
            raise SimulatorError(f"unknown merchant options: {sorted(unknown)}")
        with self._lock:
            merchant = self._merchant(mchid)
            merchant.options = replace(merchant.options, **changes)
            return replace(merchant.options)

    def platform_key(self, mchid: str) -> PlatformKey:
        with self._lock:
            return self._merchant(mchid).platform

    def _merchant(self, mchid: str) -> _Merchant:
        try:
            return self._merchants[mchid]
        except KeyError:
            raise SimulatorError(f"unknown merchant {mchid}") from None

    # -- faults --

    def inject(self, fault: str, path_prefix: str = "/", times: int = 1) -> None:
        """The next ``times`` requests whose path starts with ``path_prefix`` meet ``fault`` (see FAULTS)."""
        if fault not in FAULTS:
            raise SimulatorError(f"unknown fault {fault!r}; one of {FAULTS}")
        if times < 1:
            raise SimulatorError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(fault, path_prefix, int(times)))

    def inject_notification(self, fault: str, times: int = 1, delay_seconds: float = 5.0) -> None:
        """The next ``times`` notifications are duplicated, dropped or delayed by ``delay_seconds``."""
        if fault not in NOTIFICATION_FAULTS:
            raise SimulatorError(f"unknown notification fault {fault!r}; one of {NOTIFICATION_FAULTS}")
        if times < 1:
            raise SimulatorError("times must be at least 1")
        with self._lock:
            self._notification_faults.append(_NotificationFault(fault, int(times), float(delay_seconds)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._notification_faults.clear()

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault.fault
        return None

    def _take_notification_fault(self) -> _NotificationFault | None:
        if not self._notification_faults:
            return None
        fault = self._notification_faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._notification_faults.pop(0)
        return fault

    # -- the consumer's actions --

    def confirm_transfer(self, out_bill_no: str, mchid: str | None = None) -> dict[str, Any]:
        """The consumer confirms receipt in WeChat: WAIT_USER_CONFIRM -> SUCCESS, and a notification."""
        with self._lock:
            bill = self._find_bill(out_bill_no, mchid)
            if bill.state != "WAIT_USER_CONFIRM":
                raise SimulatorError(f"bill {out_bill_no} is {bill.state}, not WAIT_USER_CONFIRM")
            self._finish_bill(bill, "SUCCESS")
            return bill.view()

    def fail_transfer(
        self, out_bill_no: str, fail_reason: str = "PAYEE_ACCOUNT_ABNORMAL", mchid: str | None = None
    ) -> dict[str, Any]:
        """WeChat fails an open bill (e.g. the consumer's account is frozen): FAIL, and a notification."""
        with self._lock:
            bill = self._find_bill(out_bill_no, mchid)
            if bill.state not in ("WAIT_USER_CONFIRM", "ACCEPTED", "CANCELING"):
                raise SimulatorError(f"bill {out_bill_no} is already {bill.state}")
            self._finish_bill(bill, "FAIL", fail_reason=fail_reason)
            return bill.view()

    def pay(self, out_trade_no: str, openid: str | None = None, mchid: str | None = None) -> dict[str, Any]:
        """The consumer pays a JSAPI order: NOTPAY -> SUCCESS, and a TRANSACTION.SUCCESS notification.

        ``openid`` must be the order's payer (WeChat only lets that person pay it); None = the payer.
        """
        with self._lock:
            payment = self._find_payment(out_trade_no, mchid)
            self._expire_payment(payment, self.now())
            if payment.trade_state != "NOTPAY":
                raise SimulatorError(f"order {out_trade_no} is {payment.trade_state}, not NOTPAY")
            if openid is not None and openid != payment.openid:
                raise SimulatorError(f"order {out_trade_no} belongs to another payer")
            now = self.now()
            payment.trade_state = "SUCCESS"
            payment.transaction_id = (
                "42000" + _random_digits(5) + datetime.fromtimestamp(now, CST).strftime("%Y%m%d") + _random_digits(10)
            )
            payment.success_time = now
            self._payments_by_id[payment.transaction_id] = (payment.mchid, payment.out_trade_no)
            merchant = self._merchants[payment.mchid]
            self._notify(merchant, payment.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction", payment.view())
            return payment.view()

    def complete_refund(self, out_refund_no: str, mchid: str | None = None) -> dict[str, Any]:
        """The refund reaches the consumer: PROCESSING -> SUCCESS, and a REFUND.SUCCESS notification."""
        with self._lock:
            refund = self._find(self._refunds, out_refund_no, mchid, "refund")
            if refund.status != "PROCESSING":
                raise SimulatorError(f"refund {out_refund_no} is {refund.status}")
            self._complete_refund(refund)
            return refund.view()

    def _find(self, table: Mapping[tuple[str, str], Any], number: str, mchid: str | None, what: str) -> Any:
        if mchid is not None:
            try:
                return table[(mchid, number)]
            except KeyError:
                raise SimulatorError(f"unknown {what} {number} of merchant {mchid}") from None
        found = [item for (_, no), item in table.items() if no == number]
        if not found:
            raise SimulatorError(f"unknown {what} {number}")
        if len(found) > 1:
            raise SimulatorError(f"{what} {number} exists under several merchants: give mchid")
        return found[0]

    def _find_bill(self, out_bill_no: str, mchid: str | None) -> _Bill:
        bill: _Bill = self._find(self._bills, out_bill_no, mchid, "transfer bill")
        return bill

    def _find_payment(self, out_trade_no: str, mchid: str | None) -> _Payment:
        payment: _Payment = self._find(self._payments, out_trade_no, mchid, "order")
        return payment

    # -- inspection --

    def transfer_bills(self, mchid: str | None = None) -> list[dict[str, Any]]:
        """Every bill as queried, plus what only WeChat sees (user_name, notify_url, scene)."""
        with self._lock:
            return [
                {
                    **bill.view(),
                    "user_name": bill.user_name,
                    "notify_url": bill.notify_url,
                    "transfer_scene_id": bill.transfer_scene_id,
                }
                for bill in self._bills.values()
                if mchid is None or bill.mchid == mchid
            ]

    def payments(self, mchid: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**p.view(), "prepay_id": p.prepay_id, "description": p.description, "notify_url": p.notify_url}
                for p in self._payments.values()
                if mchid is None or p.mchid == mchid
            ]

    def refunds(self, mchid: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**r.view(), "mchid": r.mchid, "reason": r.reason, "notify_url": r.notify_url}
                for r in self._refunds.values()
                if mchid is None or r.mchid == mchid
            ]

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification created, oldest first, with each delivery attempt and its result."""
        with self._lock:
            return [n.view() for n in self._notifications.values()]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no notification is still to be delivered (or retried); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if all(n.state != "pending" for n in self._notifications.values()):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def state(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (GET /_sim/state)."""
        with self._lock:
            return {
                "now": _iso(self.now()),
                "settings": {
                    "timeout_seconds": self.timeout_seconds,
                    "notify_retry_schedule": list(self.notify_retry_schedule),
                    "notify_timeout_seconds": self.notify_timeout_seconds,
                },
                "official_accounts": [
                    {"appid": a.appid, "oauth_domains": list(a.oauth_domains) if a.oauth_domains is not None else None}
                    for a in self._accounts.values()
                ],
                "merchants": [
                    {
                        "mchid": m.mchid,
                        "appid": m.appid,
                        "merchant_cert_serial_no": m.serial_no,
                        "public_key_id": m.public_key_id,
                        "public_key_pem": _public_pem(m.platform_key),
                        "options": asdict(m.options),
                    }
                    for m in self._merchants.values()
                ],
                "transfer_bills": self.transfer_bills(),
                "payments": self.payments(),
                "refunds": self.refunds(),
                "notifications": self.notifications(),
                "faults": [asdict(f) for f in self._faults],
                "notification_faults": [asdict(f) for f in self._notification_faults],
            }

    # -- time-driven changes --

    def _sweep(self) -> None:
        with self._lock:
            now = self.now()
            for bill in self._bills.values():
                if bill.state == "WAIT_USER_CONFIRM":
                    merchant = self._merchants[bill.mchid]
                    if now >= bill.created + merchant.options.confirm_timeout_seconds:
                        self._finish_bill(bill, "CANCELLED", fail_reason=UNCONFIRMED_FAIL_REASON)
                elif bill.state == "CANCELING" and bill.cancel_due is not None and now >= bill.cancel_due:
                    self._finish_bill(bill, "CANCELLED")
            for refund in self._refunds.values():
                if refund.status == "PROCESSING" and refund.complete_due is not None and now >= refund.complete_due:
                    self._complete_refund(refund)
            for payment in self._payments.values():
                self._expire_payment(payment, now)

    def _expire_payment(self, payment: _Payment, now: float) -> None:
        if payment.trade_state == "NOTPAY" and payment.expire_at is not None and now >= payment.expire_at:
            payment.trade_state = "CLOSED"

    def _finish_bill(self, bill: _Bill, state: str, fail_reason: str | None = None) -> None:
        merchant = self._merchants[bill.mchid]
        bill.state = state
        bill.fail_reason = fail_reason
        bill.updated = self.now()
        bill.cancel_due = None
        if state in ("CANCELLED", "FAIL") and merchant.options.balance is not None:
            merchant.options.balance += bill.transfer_amount  # the held amount goes back
        resource = {
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": bill.state,
            "mch_id": bill.mchid,
            "transfer_amount": bill.transfer_amount,
            "openid": bill.openid,
            "create_time": _iso(bill.created),
            "update_time": _iso(bill.updated),
        }
        if fail_reason:
            resource["fail_reason"] = fail_reason
        self._notify(
            merchant, bill.notify_url, "MCHTRANSFER.BILL.FINISHED", "商家转账单据终态通知", "mch_payment", resource
        )

    def _complete_refund(self, refund: _Refund) -> None:
        refund.status = "SUCCESS"
        refund.success_time = self.now()
        refund.complete_due = None
        resource = {
            "mchid": refund.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": "SUCCESS",
            "success_time": _iso(refund.success_time),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        self._notify(self._merchants[refund.mchid], refund.notify_url, "REFUND.SUCCESS", "退款成功", "refund", resource)

    # -- notifications --

    def _notify(
        self,
        merchant: _Merchant,
        notify_url: str | None,
        event_type: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
    ) -> None:
        """Encrypt ``resource`` for the merchant and deliver it (in the background) to ``notify_url``."""
        if not notify_url:
            return
        nonce = _random_alnum(12)
        ciphertext = AESGCM(merchant.apiv3_key.encode()).encrypt(
            nonce.encode(), _json_bytes(resource), original_type.encode()
        )
        created = _iso(self.now())
        body = {
            "id": str(uuid.uuid4()),
            "create_time": created,
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        fault = self._take_notification_fault()
        note = _Notification(
            id=str(body["id"]),
            mchid=merchant.mchid,
            event_type=event_type,
            summary=summary,
            notify_url=notify_url,
            resource=resource,
            body=_json_bytes(body),
            created=created,
            fault=fault.fault if fault else None,
            tracks=2 if fault and fault.fault == "duplicate" else 1,
        )
        self._notifications[note.id] = note
        if fault and fault.fault == "drop":
            note.state = "dropped"
            return
        delay = fault.delay_seconds if fault and fault.fault == "delay" else 0.0
        for track in range(note.tracks):
            self._worker.schedule(delay, partial(self._deliver, note.id, track, 0))

    def _signed_headers(self, key: rsa.RSAPrivateKey, serial: str, body: bytes) -> dict[str, str]:
        """WeChat's signature headers over ``timestamp\\nnonce\\nbody\\n`` (answers and notifications)."""
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": _rsa_sign(key, f"{timestamp}\n{nonce}\n{body.decode()}\n"),
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": AUTH_SCHEME,
            "Request-ID": secrets.token_hex(20).upper() + "-0",
        }

    def _deliver(self, note_id: str, track: int, number: int) -> None:
        """One delivery attempt (runs in its own thread); a failure schedules the next retry, if any."""
        with self._lock:
            note = self._notifications[note_id]
            merchant = self._merchants[note.mchid]
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Mozilla/4.0",
                **self._signed_headers(merchant.platform_key, merchant.public_key_id, note.body),
            }
            timeout = self.notify_timeout_seconds
        started = time.monotonic()
        status, error = _post(note.notify_url, note.body, headers, timeout)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        with self._lock:
            note.attempts.append(_Attempt(track, number, _iso(self.now()), status, error, elapsed_ms))
            if status is not None and 200 <= status < 300:
                note.delivered_tracks += 1
            elif number < len(self.notify_retry_schedule):
                self._worker.schedule(
                    self.notify_retry_schedule[number], partial(self._deliver, note_id, track, number + 1)
                )
                return
            else:
                note.failed_tracks += 1
            if note.delivered_tracks + note.failed_tracks == note.tracks:
                note.state = "failed" if note.failed_tracks else "delivered"

    # -- HTTP entry point --

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one HTTP request (the server calls this; tests may too)."""
        path = request.path
        if path == "/_sim" or path.startswith("/_sim/"):
            return self._handle_control(request)
        self._sweep()
        fault = self._take_fault(path)
        is_pay = path.startswith("/v3/")
        if fault == "error_500":
            if is_pay:
                return self._pay_error_response(request, ApiError(500, "SYSTEM_ERROR", "系统异常，请稍后重试"))
            return _json_response(500, {"errcode": -1, "errmsg": "system error"})
        if fault == "rate_limit":
            if is_pay:
                return self._pay_error_response(request, ApiError(429, "FREQUENCY_LIMITED", "频率超限，请降低请求频率"))
            return _oauth_json(
                {"errcode": 45011, "errmsg": "api minute-quota reach limit mustslower retry next minute"}
            )
        if is_pay:
            response = self._handle_pay(request)
        elif path.startswith(("/connect/", "/sns/")):
            response = self._handle_oauth(request)
        else:
            response = _json_response(404, {"code": "NOT_FOUND", "message": f"no such endpoint: {path}"})
        if fault == "timeout":
            response.hold_seconds = self.timeout_seconds
        elif fault == "lost_response":
            response.drop = True
        return response

    # -- WeChat Pay APIv3 --

    def _handle_pay(self, request: HttpRequest) -> HttpResponse:
        try:
            merchant = self._authenticate(request)
            matched = _match(_PAY_ROUTES, request.method, request.path)
            if matched is None:
                raise ApiError(404, "NOT_FOUND", "请求的资源不存在")
            name, params = matched
            if not name:
                raise ApiError(405, "INVALID_REQUEST", f"不支持的请求方法 {request.method}")
            body = self._json_body(request)
            with self._lock:
                status, payload = getattr(self, name)(merchant, request, body, **params)
        except ApiError as exc:
            return self._pay_error_response(request, exc)
        return self._signed_response(merchant.platform_key, merchant.public_key_id, status, payload)

    def _signed_response(
        self, key: rsa.RSAPrivateKey, serial: str, status: int, payload: dict[str, Any] | None
    ) -> HttpResponse:
        body = _json_bytes(payload) if payload is not None else b""
        headers = list(self._signed_headers(key, serial, body).items())
        return HttpResponse(status, body, "application/json" if payload is not None else None, headers)

    def _pay_error_response(self, request: HttpRequest, error: ApiError) -> HttpResponse:
        """Errors are signed too, with the key of the merchant the request names if there is one."""
        fields_ = self._authorization_fields(request) or {}
        with self._lock:
            merchant = self._merchants.get(fields_.get("mchid", ""))
            if merchant is not None:
                key, serial = merchant.platform_key, merchant.public_key_id
            else:
                if self._fallback_key is None:
                    self._fallback_key = _new_rsa_key()
                key, serial = self._fallback_key, "PUB_KEY_ID_UNKNOWN"
        return self._signed_response(key, serial, error.status, {"code": error.code, "message": error.message})

    @staticmethod
    def _authorization_fields(request: HttpRequest) -> dict[str, str] | None:
        scheme, _, rest = request.headers.get("authorization", "").strip().partition(" ")
        if scheme != AUTH_SCHEME:
            return None
        return dict(_AUTH_PARAM.findall(rest))

    def _authenticate(self, request: HttpRequest) -> _Merchant:
        """Check the Authorization header as WeChat does: format, merchant, serial, time, RSA signature."""
        auth = self._authorization_fields(request)
        if auth is None:
            raise ApiError(401, "SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")
        missing = [k for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no") if not auth.get(k)]
        if missing:
            raise ApiError(401, "SIGN_ERROR", f"Http头Authorization缺少参数: {','.join(missing)}")
        with self._lock:
            merchant = self._merchants.get(auth["mchid"])
        if merchant is None:
            raise ApiError(401, "SIGN_ERROR", f"商户号 {auth['mchid']} 不存在")
        if auth["serial_no"].upper() != merchant.serial_no:
            raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        try:
            timestamp = int(auth["timestamp"])
        except ValueError:
            raise ApiError(401, "SIGN_ERROR", "Http头Authorization的timestamp格式错误") from None
        if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
            raise ApiError(401, "SIGN_ERROR", "Http头Authorization的timestamp与当前时间相差超过5分钟")
        try:
            body_text = request.body.decode()
        except UnicodeDecodeError:
            raise ApiError(400, "INVALID_REQUEST", "请求体不是UTF-8编码") from None
        message = f"{request.method}\n{request.target}\n{auth['timestamp']}\n{auth['nonce_str']}\n{body_text}\n"
        if not _rsa_verify(merchant.public_key, message, auth["signature"]):
            raise ApiError(401, "SIGN_ERROR", "签名错误，请检查后再试")
        return merchant

    @staticmethod
    def _json_body(request: HttpRequest) -> dict[str, Any]:
        if not request.body:
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "PARAM_ERROR", "请求体必须是JSON对象")
        return body

    # transfers (商家转账, 用户确认模式)

    def _transfer_create(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        limit = merchant.options.transfer_rate_limit
        if limit is not None:
            window, now_mono = merchant.transfer_posts, time.monotonic()
            while window and now_mono - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                raise ApiError(429, "FREQUENCY_LIMITED", "频率超限，请降低请求接口频率")
            window.append(now_mono)

        appid = _require_str(body, "appid", 32)
        if appid != merchant.appid:
            raise ApiError(400, "INVALID_REQUEST", "APPID不存在或与商户号无绑定关系")
        out_bill_no = _require_str(body, "out_bill_no", 32)
        if not _OUT_BILL_NO.fullmatch(out_bill_no):
            raise ApiError(400, "PARAM_ERROR", "out_bill_no只能由数字、大小写字母组成")
        scene = _require_str(body, "transfer_scene_id", 36)
        openid = _require_str(body, "openid", 64)
        amount = _require_int(body, "transfer_amount")
        remark = _require_str(body, "transfer_remark", 32)
        perception = _optional_str(body, "user_recv_perception", 32)
        notify_url = _optional_notify_url(body)
        report_infos = _report_infos(body.get("transfer_scene_report_infos"))
        if scene == "1000":  # 现金营销: WeChat requires these two report entries
            types = {info["info_type"] for info in report_infos}
            if not {"活动名称", "奖励说明"} <= types:
                raise ApiError(400, "PARAM_ERROR", "转账场景1000(现金营销)需报备「活动名称」和「奖励说明」")
        user_name = None
        if body.get("user_name") is not None:
            if request.headers.get("wechatpay-serial", "") != merchant.public_key_id:
                raise ApiError(400, "PARAM_ERROR", "敏感信息加密的Wechatpay-Serial与微信支付公钥ID不一致")
            user_name = self._decrypt_sensitive(merchant, body["user_name"])
        if amount >= 200000 and not user_name:
            raise ApiError(400, "PARAM_ERROR", "转账金额>=2,000元时，收款用户姓名必填")

        fingerprint = _fingerprint(
            {
                "appid": appid,
                "scene": scene,
                "openid": openid,
                "amount": amount,
                "remark": remark,
                "perception": perception,
                "notify_url": notify_url,
                "report_infos": report_infos,
                "user_name": user_name,
            }
        )
        existing = self._bills.get((merchant.mchid, out_bill_no))
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise ApiError(400, "INVALID_REQUEST", "单号已存在但信息不一致，请查单后比较确认")
            return 200, self._bill_created_view(existing, existing.state)

        now = self.now()
        self._check_quota(merchant, openid, amount, now)
        options = merchant.options
        if options.balance is not None:
            if options.balance < amount:
                raise ApiError(403, "NOT_ENOUGH", "资金不足，请充值后原单重试")
            options.balance -= amount
        bill = _Bill(
            mchid=merchant.mchid,
            appid=appid,
            out_bill_no=out_bill_no,
            transfer_bill_no=_transfer_bill_no(now),
            transfer_scene_id=scene,
            openid=openid,
            transfer_amount=amount,
            transfer_remark=remark,
            user_name=user_name,
            user_recv_perception=perception,
            report_infos=report_infos,
            notify_url=notify_url,
            fingerprint=fingerprint,
            created=now,
            updated=now,
            package_info=base64.b64encode(secrets.token_bytes(48)).decode(),
        )
        self._bills[(merchant.mchid, out_bill_no)] = bill
        self._bills_by_no[bill.transfer_bill_no] = (merchant.mchid, out_bill_no)
        if options.auto_confirm:
            answer = self._bill_created_view(bill, "ACCEPTED")
            self._finish_bill(bill, "SUCCESS")
            return 200, answer
        return 200, self._bill_created_view(bill, bill.state)

    @staticmethod
    def _bill_created_view(bill: _Bill, state: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "create_time": _iso(bill.created),
            "state": state,
        }
        if state == "WAIT_USER_CONFIRM":
            out["package_info"] = bill.package_info
        if bill.fail_reason:
            out["fail_reason"] = bill.fail_reason
        return out

    def _check_quota(self, merchant: _Merchant, openid: str, amount: int, now: float) -> None:
        options = merchant.options
        if options.per_user_daily_count is None and options.per_user_daily_amount is None:
            return
        today = datetime.fromtimestamp(now, CST).date()
        todays = [
            b
            for b in self._bills.values()
            if b.mchid == merchant.mchid
            and b.openid == openid
            and b.state not in ("CANCELLED", "FAIL")
            and datetime.fromtimestamp(b.created, CST).date() == today
        ]
        if options.per_user_daily_count is not None and len(todays) >= options.per_user_daily_count:
            raise ApiError(403, "QUOTA_EXCEED", "超过用户单日收款次数，核实产品设置是否准确")
        if options.per_user_daily_amount is not None and (
            sum(b.transfer_amount for b in todays) + amount > options.per_user_daily_amount
        ):
            raise ApiError(403, "QUOTA_EXCEED", "超过用户单日收款额度，核实产品设置是否准确")

    def _decrypt_sensitive(self, merchant: _Merchant, value: object) -> str:
        """A field encrypted with the platform public key (RSA-OAEP, SHA-1, as WeChat specifies)."""
        if not isinstance(value, str):
            raise ApiError(400, "PARAM_ERROR", "user_name必须是加密后的字符串")
        try:
            sha1 = hashes.SHA1()  # noqa: S303 - RSA-OAEP with SHA-1 is what WeChat Pay specifies here
            plain = merchant.platform_key.decrypt(
                base64.b64decode(value, validate=True),
                padding.OAEP(mgf=padding.MGF1(algorithm=sha1), algorithm=sha1, label=None),
            )
            return plain.decode()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "PARAM_ERROR", "user_name解密失败，请使用微信支付公钥加密") from None

    def _transfer_query_out(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        bill = self._bills.get((merchant.mchid, no))
        if bill is None:
            raise ApiError(404, "NOT_FOUND", "记录不存在")
        return 200, bill.view()

    def _transfer_query_no(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        key = self._bills_by_no.get(no)
        if key is None or key[0] != merchant.mchid:
            raise ApiError(404, "NOT_FOUND", "记录不存在")
        return 200, self._bills[key].view()

    def _transfer_cancel(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        bill = self._bills.get((merchant.mchid, no))
        if bill is None:
            raise ApiError(404, "NOT_FOUND", "记录不存在")
        if bill.state in ("SUCCESS", "FAIL"):
            raise ApiError(400, "INVALID_REQUEST", f"单据状态为{bill.state}，不允许撤销")
        if bill.state == "WAIT_USER_CONFIRM":
            delay = merchant.options.cancel_delay_seconds
            bill.state = "CANCELING"
            bill.updated = self.now()
            answer = {"out_bill_no": no, "transfer_bill_no": bill.transfer_bill_no, "state": "CANCELING"}
            answer["update_time"] = _iso(bill.updated)
            if delay <= 0:
                self._finish_bill(bill, "CANCELLED")
            else:
                bill.cancel_due = self.now() + delay
            return 200, answer
        return 200, {
            "out_bill_no": no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": bill.state,
            "update_time": _iso(bill.updated),
        }

    # JSAPI payments

    def _jsapi_create(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        appid = _require_str(body, "appid", 32)
        mchid = _require_str(body, "mchid", 32)
        if mchid != merchant.mchid:
            raise ApiError(400, "MCH_NOT_EXISTS", "请求体中的mchid与Authorization中的mchid不一致")
        if appid != merchant.appid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        description = _require_str(body, "description", 127)
        out_trade_no = _require_str(body, "out_trade_no", 32)
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise ApiError(400, "PARAM_ERROR", "out_trade_no须为6-32位数字、大小写字母或_-|*")
        notify_url = _optional_notify_url(body)
        if notify_url is None:
            raise ApiError(400, "PARAM_ERROR", "缺少参数notify_url")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise ApiError(400, "PARAM_ERROR", "缺少参数amount")
        total = _require_int(amount, "total")
        currency = amount.get("currency", "CNY")
        if currency != "CNY":
            raise ApiError(400, "PARAM_ERROR", "currency只支持CNY")
        payer = body.get("payer")
        if not isinstance(payer, dict):
            raise ApiError(400, "PARAM_ERROR", "JSAPI下单缺少参数payer")
        openid = _require_str(payer, "openid", 128)
        attach = _optional_str(body, "attach", 128)
        time_expire = _optional_str(body, "time_expire", 64)
        expire_at = None
        if time_expire is not None:
            try:
                parsed = datetime.fromisoformat(time_expire)
            except ValueError:
                raise ApiError(400, "PARAM_ERROR", "time_expire须为RFC3339格式") from None
            if parsed.tzinfo is None:
                raise ApiError(400, "PARAM_ERROR", "time_expire须带时区")
            expire_at = parsed.timestamp()
        fingerprint = _fingerprint(
            {
                "appid": appid,
                "description": description,
                "notify_url": notify_url,
                "total": total,
                "currency": currency,
                "openid": openid,
                "attach": attach,
                "time_expire": time_expire,
            }
        )
        existing = self._payments.get((merchant.mchid, out_trade_no))
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            if existing.trade_state in ("SUCCESS", "REFUND"):
                raise ApiError(400, "ORDERPAID", "该订单已支付")
            if existing.trade_state == "CLOSED":
                raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
            return 200, {"prepay_id": existing.prepay_id}
        now = self.now()
        payment = _Payment(
            mchid=merchant.mchid,
            appid=appid,
            out_trade_no=out_trade_no,
            description=description,
            notify_url=notify_url,
            total=total,
            currency=currency,
            openid=openid,
            attach=attach,
            time_expire=time_expire,
            expire_at=expire_at,
            fingerprint=fingerprint,
            prepay_id="wx" + datetime.fromtimestamp(now, CST).strftime("%Y%m%d%H%M%S") + secrets.token_hex(11)[:20],
            created=now,
        )
        self._payments[(merchant.mchid, out_trade_no)] = payment
        return 200, {"prepay_id": payment.prepay_id}

    def _query_mchid(self, merchant: _Merchant, request: HttpRequest) -> None:
        if request.query.get("mchid") != merchant.mchid:
            raise ApiError(400, "PARAM_ERROR", "查询参数mchid缺失或与Authorization中的mchid不一致")

    def _payment_query_out(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        self._query_mchid(merchant, request)
        payment = self._payments.get((merchant.mchid, no))
        if payment is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        return 200, payment.view()

    def _payment_query_id(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        self._query_mchid(merchant, request)
        key = self._payments_by_id.get(no)
        if key is None or key[0] != merchant.mchid:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        return 200, self._payments[key].view()

    def _payment_close(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, None]:
        if body.get("mchid") != merchant.mchid:
            raise ApiError(400, "PARAM_ERROR", "请求体中的mchid缺失或与Authorization中的mchid不一致")
        payment = self._payments.get((merchant.mchid, no))
        if payment is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        if payment.trade_state in ("SUCCESS", "REFUND"):
            raise ApiError(400, "ORDERPAID", "订单已支付，不能关单")
        payment.trade_state = "CLOSED"
        return 204, None

    # refunds

    def _refund_create(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        out_refund_no = _require_str(body, "out_refund_no", 64)
        if not _OUT_REFUND_NO.fullmatch(out_refund_no):
            raise ApiError(400, "PARAM_ERROR", "out_refund_no格式错误")
        if isinstance(body.get("transaction_id"), str):
            key = self._payments_by_id.get(body["transaction_id"])
            payment = self._payments.get(key) if key and key[0] == merchant.mchid else None
        elif isinstance(body.get("out_trade_no"), str):
            payment = self._payments.get((merchant.mchid, body["out_trade_no"]))
        else:
            raise ApiError(400, "PARAM_ERROR", "transaction_id和out_trade_no必须填写其一")
        if payment is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise ApiError(400, "PARAM_ERROR", "缺少参数amount")
        refund_amount = _require_int(amount, "refund")
        total = _require_int(amount, "total")
        currency = amount.get("currency", "CNY")
        if currency != "CNY":
            raise ApiError(400, "PARAM_ERROR", "currency只支持CNY")
        reason = _optional_str(body, "reason", 80)
        notify_url = _optional_notify_url(body)
        fingerprint = _fingerprint(
            {
                "order": payment.out_trade_no,
                "refund": refund_amount,
                "total": total,
                "reason": reason,
                "url": notify_url,
            }
        )
        existing = self._refunds.get((merchant.mchid, out_refund_no))
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise ApiError(400, "INVALID_REQUEST", "退款单号已存在但请求参数不一致")
            return 200, existing.view()
        if payment.trade_state not in ("SUCCESS", "REFUND") or payment.transaction_id is None:
            raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != payment.total:
            raise ApiError(400, "PARAM_ERROR", "订单金额total与原订单金额不一致")
        refunded = sum(
            r.refund
            for r in self._refunds.values()
            if r.mchid == merchant.mchid and r.out_trade_no == payment.out_trade_no
        )
        if refunded + refund_amount > payment.total:
            raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        now = self.now()
        delay = merchant.options.refund_delay_seconds
        refund = _Refund(
            mchid=merchant.mchid,
            out_refund_no=out_refund_no,
            refund_id="50" + _random_digits(27),
            out_trade_no=payment.out_trade_no,
            transaction_id=payment.transaction_id,
            reason=reason,
            notify_url=notify_url,
            refund=refund_amount,
            total=total,
            currency=currency,
            fingerprint=fingerprint,
            created=now,
            complete_due=now + delay if delay is not None else None,
        )
        self._refunds[(merchant.mchid, out_refund_no)] = refund
        payment.trade_state = "REFUND"
        return 200, refund.view()

    def _refund_query(
        self, merchant: _Merchant, request: HttpRequest, body: dict[str, Any], no: str
    ) -> tuple[int, dict[str, Any]]:
        refund = self._refunds.get((merchant.mchid, no))
        if refund is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, refund.view()

    # -- web OAuth --

    def _handle_oauth(self, request: HttpRequest) -> HttpResponse:
        path, query = request.path, request.query
        if request.method != "GET":
            return _oauth_json({"errcode": 43001, "errmsg": "require GET method"})
        if path == "/connect/oauth2/authorize":
            return self._authorize(request, query)
        handlers: dict[str, Callable[[dict[str, str], HttpRequest], dict[str, Any]]] = {
            "/sns/oauth2/access_token": self._access_token,
            "/sns/oauth2/refresh_token": self._refresh_token,
            "/sns/userinfo": self._userinfo,
            "/sns/auth": self._check_token,
        }
        handler = handlers.get(path)
        if handler is None:
            return _json_response(404, {"errcode": 404, "errmsg": "not found"})
        try:
            with self._lock:
                return _oauth_json(handler(query, request))
        except _OAuthError as exc:
            return _oauth_json({"errcode": exc.errcode, "errmsg": f"{exc.errmsg}, rid: {_rid()}"})

    def _authorize(self, request: HttpRequest, query: dict[str, str]) -> HttpResponse:
        appid = query.get("appid", "")
        redirect_uri = query.get("redirect_uri", "")
        scope = query.get("scope", "")
        state = query.get("state", "")
        with self._lock:
            account = self._accounts.get(appid)
        if not appid:
            return _error_page(10012, "appid参数错误")
        if account is None:
            return _error_page(40013, "invalid appid")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _error_page(10011, "redirect_uri参数错误")
        if account.oauth_domains is not None and parts.hostname.lower() not in account.oauth_domains:
            return _error_page(10003, "redirect_uri域名与后台配置不一致")
        if query.get("response_type") != "code" or scope not in ("snsapi_base", "snsapi_userinfo"):
            return _error_page(10005, "Scope参数错误或没有Scope权限")
        if len(state.encode()) > 128:
            return _error_page(10013, "state参数错误")
        user = query.get("sim_user", "").strip()
        if not user:
            return _persona_page(query, scope)
        if query.get("sim_deny"):
            return _redirect(_with_query(redirect_uri, {"state": state}))
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Grant(appid, user, scope, self.now() + OAUTH_CODE_TTL_SECONDS)
            self._users_by_openid[openid_for(appid, user)] = user
        return _redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    def _app(self, query: dict[str, str], with_secret: bool) -> _Account:
        account = self._accounts.get(query.get("appid", ""))
        if account is None:
            raise _OAuthError(40013, "invalid appid")
        if with_secret and query.get("secret") != account.secret:
            raise _OAuthError(40125, "invalid appsecret")
        return account

    def _issue_tokens(self, grant: _Grant) -> dict[str, Any]:
        now = self.now()
        access_token = secrets.token_urlsafe(64)
        refresh_token = secrets.token_urlsafe(64)
        self._access_tokens[access_token] = _Grant(grant.appid, grant.user, grant.scope, now + ACCESS_TOKEN_TTL_SECONDS)
        self._refresh_tokens[refresh_token] = _Grant(
            grant.appid, grant.user, grant.scope, now + REFRESH_TOKEN_TTL_SECONDS
        )
        return {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_TTL_SECONDS,
            "refresh_token": refresh_token,
            "openid": grant.openid,
            "scope": grant.scope,
            "unionid": unionid_for(grant.user),
        }

    def _access_token(self, query: dict[str, str], request: HttpRequest) -> dict[str, Any]:
        account = self._app(query, with_secret=True)
        if query.get("grant_type") != "authorization_code":
            raise _OAuthError(40002, "invalid grant_type")
        grant = self._codes.get(query.get("code", ""))
        if grant is None or grant.appid != account.appid or self.now() >= grant.expires_at:
            raise _OAuthError(40029, "invalid code")
        if grant.used:
            raise _OAuthError(40163, "code been used")
        grant.used = True
        return self._issue_tokens(grant)

    def _refresh_token(self, query: dict[str, str], request: HttpRequest) -> dict[str, Any]:
        account = self._app(query, with_secret=False)
        if query.get("grant_type") != "refresh_token":
            raise _OAuthError(40002, "invalid grant_type")
        grant = self._refresh_tokens.get(query.get("refresh_token", ""))
        if grant is None or grant.appid != account.appid or self.now() >= grant.expires_at:
            raise _OAuthError(40030, "invalid refresh_token")
        answer = self._issue_tokens(grant)
        del self._refresh_tokens[answer["refresh_token"]]
        answer["refresh_token"] = query["refresh_token"]  # WeChat hands the same refresh token back
        answer.pop("unionid")
        return answer

    def _token(self, query: dict[str, str]) -> _Grant:
        grant = self._access_tokens.get(query.get("access_token", ""))
        if grant is None:
            raise _OAuthError(40001, "invalid credential, access_token is invalid or not latest")
        if self.now() >= grant.expires_at:
            raise _OAuthError(42001, "access_token expired")
        if query.get("openid") != grant.openid:
            raise _OAuthError(40003, "invalid openid")
        return grant

    def _userinfo(self, query: dict[str, str], request: HttpRequest) -> dict[str, Any]:
        grant = self._token(query)
        if grant.scope != "snsapi_userinfo":
            raise _OAuthError(48001, "api unauthorized")
        return {
            "openid": grant.openid,
            "nickname": grant.user,
            "sex": 0,  # WeChat stopped returning sex and region in 2021
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": f"{request.base_url}/_sim/avatar/{grant.openid}.svg",
            "privilege": [],
            "unionid": unionid_for(grant.user),
        }

    def _check_token(self, query: dict[str, str], request: HttpRequest) -> dict[str, Any]:
        self._token(query)
        return {"errcode": 0, "errmsg": "ok"}

    # -- control API (/_sim) --

    def _handle_control(self, request: HttpRequest) -> HttpResponse:
        matched = _match(_CONTROL_ROUTES, request.method, request.path)
        if matched is None:
            return _json_response(404, {"error": f"no such control endpoint: {request.path}"})
        name, params = matched
        if not name:
            return _json_response(405, {"error": f"{request.method} not allowed on {request.path}"})
        try:
            body = json.loads(request.body) if request.body else {}
            if not isinstance(body, dict):
                raise SimulatorError("the body must be a JSON object")
            result = getattr(self, name)(body, **params)
        except SimulatorError as exc:
            return _json_response(400, {"error": str(exc)})
        except (ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": f"bad request: {exc!r}"})
        if isinstance(result, HttpResponse):
            return result
        return _json_response(200, result)

    def _c_state(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.state()

    def _c_notifications(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"notifications": self.notifications()}

    def _c_transfers(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"transfer_bills": self.transfer_bills()}

    def _c_payments(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"payments": self.payments()}

    def _c_refunds(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"refunds": self.refunds()}

    def _c_avatar(self, body: dict[str, Any], key: str) -> HttpResponse:
        with self._lock:
            user = self._users_by_openid.get(key, "?")
        hue = int(hashlib.sha256(user.encode()).hexdigest()[:4], 16) % 360
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132">'
            f'<rect width="132" height="132" rx="12" fill="hsl({hue},55%,55%)"/>'
            '<text x="66" y="86" font-size="60" text-anchor="middle" fill="#fff" font-family="sans-serif">'
            f"{html.escape(user[:1])}</text></svg>"
        )
        return HttpResponse(200, svg.encode(), "image/svg+xml")

    def _c_add_account(self, body: dict[str, Any]) -> dict[str, Any]:
        self.add_official_account(str(body["appid"]), str(body["secret"]), body.get("oauth_domains"))
        return {"appid": body["appid"]}

    def _c_credentials(self, body: dict[str, Any]) -> dict[str, Any]:
        return asdict(merchant_credentials())

    def _c_add_merchant(self, body: dict[str, Any]) -> dict[str, Any]:
        options = MerchantOptions(**body["options"]) if body.get("options") else None
        platform = self.add_merchant(
            str(body["mchid"]),
            str(body["appid"]),
            str(body["merchant_public_key_pem"]),
            str(body["merchant_cert_serial_no"]),
            str(body["apiv3_key"]),
            options,
        )
        return asdict(platform)

    def _c_merchant_options(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return asdict(self.configure_merchant(key, **body))

    def _c_confirm(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return self.confirm_transfer(key, body.get("mchid"))

    def _c_fail(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return self.fail_transfer(key, body.get("fail_reason", "PAYEE_ACCOUNT_ABNORMAL"), body.get("mchid"))

    def _c_pay(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return self.pay(key, body.get("openid"), body.get("mchid"))

    def _c_complete_refund(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        return self.complete_refund(key, body.get("mchid"))

    def _c_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        self.inject(str(body["fault"]), str(body.get("path_prefix", "/")), int(body.get("times", 1)))
        return {"faults": [asdict(f) for f in self._faults]}

    def _c_notification_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        self.inject_notification(str(body["fault"]), int(body.get("times", 1)), float(body.get("delay_seconds", 5.0)))
        return {"notification_faults": [asdict(f) for f in self._notification_faults]}

    def _c_clear_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.clear_faults()
        return {"faults": [], "notification_faults": []}

    def _c_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        self.configure(
            timeout_seconds=body.get("timeout_seconds"),
            notify_retry_schedule=body.get("notify_retry_schedule"),
            notify_timeout_seconds=body.get("notify_timeout_seconds"),
        )
        return dict(self.state()["settings"])

    def _c_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        self.advance_clock(float(body["advance_seconds"]))
        return {"now": _iso(self.now())}


# --- request field helpers ---------------------------------------------------------------------


def _require_str(body: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, "PARAM_ERROR", f"缺少参数{name}或类型错误")
    if len(value) > max_chars:
        raise ApiError(400, "PARAM_ERROR", f"{name}长度超过{max_chars}个字符")
    return value


def _optional_str(body: Mapping[str, Any], name: str, max_chars: int) -> str | None:
    if body.get(name) is None:
        return None
    return _require_str(body, name, max_chars)


def _require_int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ApiError(400, "PARAM_ERROR", f"{name}须为正整数(单位：分)")
    return value


def _optional_notify_url(body: Mapping[str, Any]) -> str | None:
    """WeChat wants an absolute URL without query parameters (http is accepted here: loopback receivers)."""
    url = _optional_str(body, "notify_url", 256)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "PARAM_ERROR", "notify_url须为http(s)绝对地址")
    if parts.query:
        raise ApiError(400, "PARAM_ERROR", "notify_url不能携带参数")
    return url


def _report_infos(value: object) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "PARAM_ERROR", "transfer_scene_report_infos须为数组")
    infos = []
    for item in value:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("info_type"), str)
            and isinstance(item.get("info_content"), str)
            and item["info_type"]
            and item["info_content"]
        ):
            raise ApiError(400, "PARAM_ERROR", "transfer_scene_report_infos每项须有info_type和info_content")
        infos.append({"info_type": item["info_type"], "info_content": item["info_content"]})
    return infos


# --- OAuth pages -------------------------------------------------------------------------------


def _rid() -> str:
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _redirect(location: str) -> HttpResponse:
    return HttpResponse(302, b"", None, [("Location", location)])


_PAGE_STYLE = (
    "body{font-family:-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#ededed;margin:0}"
    ".box{max-width:420px;margin:0 auto;background:#fff;min-height:100vh;padding:24px;box-sizing:border-box}"
    "h1{font-size:18px;text-align:center}.hint{color:#888;font-size:14px;text-align:center}"
    "a.p{display:block;margin:12px 0;padding:14px;border-radius:8px;background:#07c160;color:#fff;"
    "text-decoration:none;text-align:center;font-size:16px}"
    "form{margin-top:20px;display:flex;gap:8px}input[type=text]{flex:1;padding:10px;font-size:16px}"
    "button{padding:10px 16px;background:#07c160;color:#fff;border:0;border-radius:6px;font-size:16px}"
    "a.deny{display:block;margin-top:24px;text-align:center;color:#576b95}"
)


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_PAGE_STYLE}</style></head><body><div class=box>{body}</div></body></html>"
    ).encode()


def _error_page(errcode: int, errmsg: str) -> HttpResponse:
    body = f"<h1>授权失败</h1><p class=hint>{html.escape(errmsg)}</p><p class=hint>errcode: {errcode}</p>"
    return HttpResponse(200, _page("微信授权错误", body), "text/html; charset=utf-8", [("X-Sim-Errcode", str(errcode))])


def _persona_page(query: Mapping[str, str], scope: str) -> HttpResponse:
    base = {k: v for k, v in query.items() if k not in ("sim_user", "sim_deny")}

    def link(extra: Mapping[str, str]) -> str:
        return html.escape("/connect/oauth2/authorize?" + urlencode({**base, **extra}, quote_via=quote))

    what = "获取你的昵称、头像" if scope == "snsapi_userinfo" else "获取你的身份标识(静默授权)"
    personas = "".join(f'<a class=p href="{link({"sim_user": name})}">以「{name}」身份授权</a>' for name in PERSONAS)
    hidden = "".join(f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in base.items())
    body = (
        "<h1>模拟微信授权</h1>"
        f"<p class=hint>公众号 {html.escape(base.get('appid', ''))} 申请{what}</p>"
        f"{personas}"
        f'<form method=get action="/connect/oauth2/authorize">{hidden}'
        '<input type=text name=sim_user placeholder="其他用户名" required><button type=submit>授权</button></form>'
        f'<a class=deny href="{link({"sim_user": PERSONAS[0], "sim_deny": "1"})}">拒绝</a>'
    )
    return HttpResponse(200, _page("模拟微信授权", body), "text/html; charset=utf-8")


# --- server ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: WeChatSimulator) -> None:
        self.simulator = simulator
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' sessions expect
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=f"http://{host}",
        )
        try:
            response = self.server.simulator.handle(request)
        except Exception:
            log.exception("wechat simulator: %s %s failed", self.command, self.path)
            response = _json_response(500, {"code": "SYSTEM_ERROR", "message": "simulator error"})
        if response.hold_seconds > 0:
            self.server.stopping.wait(response.hold_seconds)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its timeout was shorter than our hold)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("wechat simulator: %s", format % args)


class RunningSimulator:
    """A simulator served on a port. ``stop()`` closes the port and every open connection."""

    def __init__(self, simulator: WeChatSimulator, server: _Server) -> None:
        self.simulator = simulator
        self._server = server
        host, port = server.server_address[:2]
        self.port = int(port)
        self.host = str(host)
        self.base_url = f"http://{self.host}:{self.port}"
        # A short poll interval: stop() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wechat-sim-http", daemon=True
        )
        self._thread.start()
        self._stopped = False

    @property
    def oauth_base_url(self) -> str:
        """For wechatpy's ``WeChatOAuth.OAUTH_BASE_URL``."""
        return f"{self.base_url}/connect/"

    @property
    def api_base_url(self) -> str:
        """For wechatpy's ``WeChatOAuth.API_BASE_URL``."""
        return f"{self.base_url}/"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- the merchant's side of notifications ------------------------------------------------------


class NotifyCatcher:
    """Stands where a brand's notify URL points, on loopback: answers 204 to whatever WeChat Pay
    posts and, with `keep`, records each post (headers, body) so a test can hand it to the product
    itself (in the test's own transaction). Used by the tests and the benchmarks."""

    def __init__(self, *, keep: bool = True) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if keep:
                    with catcher._lock:
                        catcher.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/pay/notify/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def meta(self, index: int) -> dict[str, str]:
        """Post `index`'s WeChat Pay headers as Django test-client keyword arguments (HTTP_*)."""
        headers, _body = self.received[index]
        return {
            "HTTP_" + key.upper().replace("-", "_"): value
            for key, value in headers.items()
            if key.lower().startswith("wechatpay-")
        }


# --- CLI ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local WeChat OAuth and WeChat Pay APIv3 simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--timeout-seconds", type=float, default=10.0, help="how long the timeout fault holds")
    parser.add_argument(
        "--notify-retry-schedule",
        default=",".join(f"{s:g}" for s in DEFAULT_NOTIFY_RETRY_SCHEDULE),
        help="seconds between notification retries, comma-separated ('wechat' for WeChat's own schedule)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    schedule = (
        WECHAT_NOTIFY_RETRY_SCHEDULE
        if args.notify_retry_schedule == "wechat"
        else tuple(float(s) for s in args.notify_retry_schedule.split(",") if s.strip())
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    simulator = WeChatSimulator(timeout_seconds=args.timeout_seconds, notify_retry_schedule=schedule)
    running = simulator.start(args.host, args.port)
    print(f"wechat simulator listening on {running.base_url}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        simulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
