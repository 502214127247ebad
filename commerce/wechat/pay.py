"""Money through WeChat Pay APIv3, behind a small interface: merchant transfers (red packets and other
payouts to a consumer's WeChat balance), JSAPI payments of orders (create, the consumer page's
JS-SDK parameters, query, close), refunds (create, query), and the signed notifications WeChat sends
back.

The real client is wechatpayv3's WeChatPay in public-key mode (the merchant's API key signs each
request; WeChat Pay's public key checks each answer and notification). Its gateway is set from
WECHAT_PAY_BASE_URL, so the demo and the tests run this very code against the local simulator.

Every outcome becomes one of a few kinds the payout worker acts on (PayError.kind):
- "retry": WeChat could not be reached, timed out or answered 5xx: the request may or may not have
  been applied; ask by the bill number before sending again (same number, so never twice);
- "rate": too many requests per second for the merchant: send again shortly;
- "quota": the consumer's daily limit at WeChat is reached: queue until tomorrow;
- "funds": the merchant's operating account is short: queue and alert;
- "config": the credentials are wrong (signature refused): queue and alert;
- "rejected": the request itself is refused (bad parameters): do not send it again as is.
PayError.code keeps WeChat's code for the callers that act on one (ORDERPAID, ORDER_CLOSED, ...).
"""

from __future__ import annotations

import functools
import json
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from wechatpayv3 import WeChatPay, WeChatPayType

from commerce.wechat.config import WeChatSettings


class PayError(Exception):
    def __init__(self, kind: str, code: str = "", message: str = "", status: int | None = None) -> None:
        super().__init__(f"{kind}: {status} {code} {message}".strip())
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TransferBill:
    out_bill_no: str
    transfer_bill_no: str
    state: str  # ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, SUCCESS, FAIL, CANCELING, CANCELLED
    package_info: str = ""
    fail_reason: str = ""


@dataclass(frozen=True)
class Notification:
    event_id: str
    event_type: str  # e.g. MCHTRANSFER.BILL.FINISHED, TRANSACTION.SUCCESS, REFUND.SUCCESS
    resource: dict[str, Any]


@dataclass(frozen=True)
class Transaction:
    """A JSAPI payment as WeChat reports it (query answer or TRANSACTION.* resource)."""

    out_trade_no: str
    trade_state: str  # NOTPAY, USERPAYING, SUCCESS, REFUND, CLOSED, REVOKED, PAYERROR
    transaction_id: str = ""
    amount_fen: int | None = None
    appid: str = ""
    mchid: str = ""
    payer_openid: str = ""
    success_time: str = ""


@dataclass(frozen=True)
class RefundResult:
    """A refund as WeChat reports it (create / query answer or REFUND.* resource)."""

    out_refund_no: str
    status: str  # PROCESSING, SUCCESS, CLOSED, ABNORMAL
    refund_id: str = ""
    out_trade_no: str = ""
    amount_fen: int | None = None
    mchid: str = ""


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def transaction_of(data: dict[str, Any]) -> Transaction:
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    payer = data.get("payer") if isinstance(data.get("payer"), dict) else {}
    return Transaction(
        out_trade_no=str(data.get("out_trade_no", "")),
        trade_state=str(data.get("trade_state", "")),
        transaction_id=str(data.get("transaction_id", "") or ""),
        amount_fen=_int_or_none(amount.get("total")),  # type: ignore[union-attr]
        appid=str(data.get("appid", "")),
        mchid=str(data.get("mchid", "")),
        payer_openid=str(payer.get("openid", "")),  # type: ignore[union-attr]
        success_time=str(data.get("success_time", "") or ""),
    )


def refund_of(data: dict[str, Any]) -> RefundResult:
    """A refund answer (`status`) or a REFUND.* resource (`refund_status`)."""
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    return RefundResult(
        out_refund_no=str(data.get("out_refund_no", "")),
        status=str(data.get("status") or data.get("refund_status") or ""),
        refund_id=str(data.get("refund_id", "") or ""),
        out_trade_no=str(data.get("out_trade_no", "")),
        amount_fen=_int_or_none(amount.get("refund")),  # type: ignore[union-attr]
        mchid=str(data.get("mchid", "")),
    )


class PayClient(Protocol):
    def create_transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, notify_url: str, activity: str
    ) -> TransferBill: ...

    def query_transfer(self, out_bill_no: str) -> TransferBill | None: ...

    def notification(self, headers: dict[str, str], body: bytes) -> Notification | None: ...

    def create_jsapi(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        openid: str,
        notify_url: str,
        time_expire: datetime | None = None,
    ) -> str: ...

    def jsapi_params(self, prepay_id: str) -> dict[str, str]: ...

    def query_transaction(self, out_trade_no: str) -> Transaction | None: ...

    def close_transaction(self, out_trade_no: str) -> bool: ...

    def create_refund(
        self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int, reason: str, notify_url: str
    ) -> RefundResult: ...

    def query_refund(self, out_refund_no: str) -> RefundResult | None: ...


_KINDS_BY_CODE = {
    "FREQUENCY_LIMITED": "rate",
    "QUOTA_EXCEED": "quota",
    "NOT_ENOUGH": "funds",
    "SIGN_ERROR": "config",
    "SYSTEM_ERROR": "retry",
    "BIZERR_NEED_RETRY": "retry",
}
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def _error(status: int, text: Any) -> PayError:
    try:
        body = json.loads(text) if isinstance(text, str | bytes) else {}
    except ValueError:
        body = {}
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
    if status >= 500:
        kind = "retry"
    elif status == 429:
        kind = "rate"
    elif status == 401:
        kind = "config"
    else:
        kind = _KINDS_BY_CODE.get(code, "rejected")
    return PayError(kind, code, message, status)


def _bill(data: dict[str, Any]) -> TransferBill:
    return TransferBill(
        out_bill_no=str(data.get("out_bill_no", "")),
        transfer_bill_no=str(data.get("transfer_bill_no", "")),
        state=str(data.get("state", "")),
        package_info=str(data.get("package_info", "")),
        fail_reason=str(data.get("fail_reason", "")),
    )


class WeChatPayClient:
    def __init__(self, account: WeChatSettings) -> None:
        if not account.can_pay:
            raise PayError("config", "NOT_CONFIGURED", "the brand has no WeChat Pay merchant configured")
        self.account = account
        self._pay = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=account.mchid,
            private_key=account.private_key,
            cert_serial_no=account.merchant_serial_no,
            apiv3_key=account.apiv3_key,
            appid=account.appid,
            public_key=account.platform_public_key,
            public_key_id=account.platform_public_key_id,
            timeout=(settings.WECHAT_TIMEOUT_SECONDS, settings.WECHAT_TIMEOUT_SECONDS),
        )
        # wechatpayv3 has no option for its gateway; the attribute is the one place it is read.
        self._pay._core._gate_way = settings.WECHAT_PAY_BASE_URL.rstrip("/")

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        try:
            status, text = method(*args, **kwargs)
        except requests.RequestException as exc:
            raise PayError("retry", type(exc).__name__, str(exc)[:200]) from exc
        except Exception as exc:  # wechatpayv3 raises bare Exception for a bad answer signature
            raise PayError("retry", "BAD_ANSWER", str(exc)[:200]) from exc
        return int(status), text

    def create_transfer(
        self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str, notify_url: str, activity: str
    ) -> TransferBill:
        status, text = self._call(
            self._pay.mch_transfer_bills,
            out_bill_no=out_bill_no,
            transfer_scene_id=self.account.transfer_scene_id,
            openid=openid,
            transfer_amount=amount_fen,
            transfer_remark=remark[:32],
            user_recv_perception="活动奖励",
            transfer_scene_report_infos=[
                {"info_type": "活动名称", "info_content": activity[:32] or remark[:32]},
                {"info_type": "奖励说明", "info_content": "扫码抽奖奖励"},
            ],
            notify_url=notify_url,
        )
        if status != 200:
            raise _error(status, text)
        return _bill(json.loads(text))

    def query_transfer(self, out_bill_no: str) -> TransferBill | None:
        status, text = self._call(self._pay.mch_transfer_bills_query, out_bill_no=out_bill_no)
        if status == 404:
            return None
        if status != 200:
            raise _error(status, text)
        return _bill(json.loads(text))

    # JSAPI payments

    def create_jsapi(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        openid: str,
        notify_url: str,
        time_expire: datetime | None = None,
    ) -> str:
        """JSAPI 下单: the prepay_id. The same out_trade_no with the same parameters answers the same
        order again (so a retry is safe); ORDERPAID / ORDER_CLOSED come back as PayError codes."""
        kwargs: dict[str, Any] = {}
        if time_expire is not None:
            kwargs["time_expire"] = time_expire.astimezone(_SHANGHAI).isoformat(timespec="seconds")
        status, text = self._call(
            self._pay.pay,
            description=description[:127],
            out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"},
            payer={"openid": openid},
            notify_url=notify_url,
            pay_type=WeChatPayType.JSAPI,
            **kwargs,
        )
        if status != 200:
            raise _error(status, text)
        prepay_id = str(json.loads(text).get("prepay_id", ""))
        if not prepay_id:
            raise PayError("retry", "BAD_ANSWER", "no prepay_id in the answer", status)
        return prepay_id

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the consumer page hands to WeixinJSBridge getBrandWCPayRequest / wx.chooseWXPay:
        paySign = RSA-SHA256 with the merchant key over "appId\ntimeStamp\nonceStr\npackage\n"."""
        timestamp = str(int(time.time()))
        nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        package = f"prepay_id={prepay_id}"
        pay_sign = self._pay.sign([self.account.appid, timestamp, nonce, package])
        return {
            "appId": self.account.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    def query_transaction(self, out_trade_no: str) -> Transaction | None:
        """商户订单号查询订单; None when WeChat has no such order (ORDER_NOT_EXIST)."""
        status, text = self._call(self._pay.query, out_trade_no=out_trade_no)
        if status == 404:
            return None
        if status != 200:
            raise _error(status, text)
        return transaction_of(json.loads(text))

    def close_transaction(self, out_trade_no: str) -> bool:
        """关闭订单: True when closed (or already closed), False when WeChat never had it; an order
        already paid raises PayError code ORDERPAID."""
        status, text = self._call(self._pay.close, out_trade_no=out_trade_no)
        if status in (200, 204):
            return True
        if status == 404:
            return False
        raise _error(status, text)

    # refunds

    def create_refund(
        self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int, reason: str, notify_url: str
    ) -> RefundResult:
        """申请退款. The same out_refund_no with the same parameters answers the same refund again:
        WeChat refunds a number at most once."""
        status, text = self._call(
            self._pay.refund,
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=reason[:80] or None,
            notify_url=notify_url,
        )
        if status != 200:
            raise _error(status, text)
        return refund_of(json.loads(text))

    def query_refund(self, out_refund_no: str) -> RefundResult | None:
        """查询单笔退款; None when WeChat has no such refund (RESOURCE_NOT_EXISTS)."""
        status, text = self._call(self._pay.query_refund, out_refund_no=out_refund_no)
        if status == 404:
            return None
        if status != 200:
            raise _error(status, text)
        return refund_of(json.loads(text))

    def notification(self, headers: dict[str, str], body: bytes) -> Notification | None:
        """The notification if its signature is WeChat Pay's and it decrypts under our APIv3 key."""
        try:
            data = self._pay.callback(headers=headers, body=body)
        except Exception:  # malformed: treated as not from WeChat
            return None
        if not data or not isinstance(data.get("resource"), dict):
            return None
        return Notification(
            event_id=str(data.get("id", "")), event_type=str(data.get("event_type", "")), resource=data["resource"]
        )


@functools.lru_cache(maxsize=256)
def _client(account: WeChatSettings, base_url: str, timeout: float) -> WeChatPayClient:
    return WeChatPayClient(account)


def pay_client(account: WeChatSettings) -> PayClient:
    """The brand's client, built once per process and settings (loading the merchant's RSA key costs
    ~45 ms, more than a whole payout call)."""
    return _client(account, settings.WECHAT_PAY_BASE_URL, settings.WECHAT_TIMEOUT_SECONDS)
