"""Store rewards (开瓶奖励, BC 联动) at the edge: the store and clerk QR codes at the till, the clerk's
cap scan (服务员扫码), the earnings statement and withdrawals in the terminal H5.

- `/s/<token>/` (consumers): a store's QR (its qr_token) or a clerk's (a signed token) ties the
  consumer's next cap scan to the store (and clerk): a signed, httponly cookie per brand, valid for
  the policy's `qr_minutes` (rewards.services.store_rewards.tie_for reads it on the scan page).
- `/t/clerk-scan/` (POST JSON {"code"}): a store's staff scan an opened cap's inner code.
- `/t/earnings/` (page): an account's balance, statement (Beijing time, yuan) and withdrawals;
  `?account=store` is the store's (its owner only), else the signed-in person's own.
- `/t/withdraw/` (POST JSON {"account", "amount_yuan"}): request a withdrawal.
- `/t/qr/me.png`, `/t/qr/store.png` (owner only): the QR images to show at the till.

Every refusal of a JSON endpoint is a 4xx `{"code", "message"}` (Chinese), never a 500.
"""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import qrcode
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from codes import services as code_services
from commerce.models import ChannelStaff
from commerce.selectors import channel_staff_of
from frontends import consumer
from frontends.templatetags.money import yuan
from rewards.models import StoreEarning, StoreWithdrawal
from rewards.services import store_rewards
from tenants.errors import JiumaError

LOGIN_URL = "/t/login/"
_MAX_BODY = 4096


def _refusal(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _from_error(exc: JiumaError) -> JsonResponse:
    return _refusal(exc.code, exc.message, exc.status_code)


def _store_staff(request: HttpRequest) -> ChannelStaff | None:
    """The signed-in person's active store staff record (with store and user), else None."""
    staff = channel_staff_of(request.user)
    if staff is None or staff.store_id is None or staff.store is None:
        return None
    return staff


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    if len(request.body or b"") > _MAX_BODY:
        return None
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _code_host_url(path: str) -> str:
    """`path` on the short code host, where the caps are scanned (the store QR's cookie must be set
    on the host the cap pages are served from)."""
    parts = urlsplit(code_services.url_prefix().lower())
    return f"{parts.scheme}://{parts.netloc}{path}"


def _local(value: Any) -> str:
    return timezone.localtime(value, store_rewards.SHANGHAI).strftime("%Y-%m-%d %H:%M")


# --- consumers: the store or clerk QR at the till ----------------------------------------------------


@require_GET
def store_qr(request: HttpRequest, token: str, number: int | None = None) -> HttpResponse:
    """A consumer scanned a store's or a clerk's QR code: tie their next cap scan to the store."""
    wrong_brand = number is not None and number != request.tenant.number  # type: ignore[attr-defined]
    tie = None if wrong_brand else store_rewards.resolve_qr(token)
    if tie is None:
        return consumer._notice(request, _("门店码无效"), _("该门店码无效或门店已停用，请向店员确认。"), 404)
    minutes = store_rewards.policy().qr_minutes
    response = render(request, "frontends/store_tied.html", {"store": tie.store, "minutes": minutes})
    response.set_cookie(
        store_rewards.tie_cookie_name(),
        store_rewards.tie_cookie_value(tie),
        max_age=minutes * 60,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    response["Cache-Control"] = "no-store"
    return response


# --- the terminal: what the store section of /t/ shows ----------------------------------------------


def panel(request: HttpRequest, staff: ChannelStaff) -> dict[str, Any]:
    """The store rewards section of the terminal page for a store's staff."""
    rules = store_rewards.policy()
    store = staff.store
    assert store is not None
    is_owner = bool(staff.user.has_perm(store_rewards.MANAGE_STORE_PERM))
    now = timezone.now()
    return {
        "policy": rules,
        "is_owner": is_owner,
        "can_scan": bool(staff.user.has_perm(store_rewards.USE_TERMINAL_PERM)),
        "my_balance_fen": store_rewards.balance(store, staff),
        "store_balance_fen": store_rewards.balance(store) if is_owner else None,
        "today_scans": store_rewards.clerk_scans_on(staff, now),
        "my_qr_url": _code_host_url(store_rewards.qr_path(store, staff)),
        "store_qr_url": _code_host_url(store_rewards.qr_path(store)) if is_owner else "",
    }


# --- the terminal: clerk scan ------------------------------------------------------------------------


@require_POST
def clerk_scan(request: HttpRequest) -> JsonResponse:
    """A store's staff scan (or type) an opened cap's inner code: {"code"} → the reward."""
    if not request.user.is_authenticated:
        return _refusal("not_authenticated", _("请先登录。"), 401)
    staff = _store_staff(request)
    if staff is None or not request.user.has_perm(store_rewards.USE_TERMINAL_PERM):
        return _refusal("permission_denied", _("只有门店人员可以扫码领取服务员奖励。"), 403)
    body = _json_body(request)
    if body is None:
        return _refusal("malformed_request", _("请求内容格式错误。"), 400)
    text = str(body.get("code") or "").strip()[:200]
    if not text:
        return _refusal("invalid_code", _("请扫描瓶盖内的码。"), 400)
    try:
        result = store_rewards.clerk_scan(staff, text)
    except JiumaError as exc:
        return _from_error(exc)
    return JsonResponse(
        {
            "outcome": "rewarded",
            "message": _("扫码成功，奖励 ¥%(amount)s") % {"amount": yuan(result.amount_fen)},
            "amount_fen": result.amount_fen,
            "amount_yuan": yuan(result.amount_fen),
            "today": result.today,
            "cap": result.cap,
        }
    )


# --- the terminal: earnings and withdrawals ----------------------------------------------------------


def _month(text: str) -> date | None:
    """ "2026-02" → 1 February 2026; anything else (or a year outside 2000-2999) → None (all months)."""
    try:
        year, month = (int(part) for part in text.split("-", 1))
        return date(year, month, 1) if 2000 <= year <= 2999 else None
    except (ValueError, TypeError):
        return None


def _entry_row(entry: StoreEarning) -> dict[str, Any]:
    return {
        "at": _local(entry.created_at),
        "kind": entry.kind,
        "kind_label": entry.get_kind_display(),
        "amount_fen": entry.amount_fen,
        "amount_yuan": yuan(entry.amount_fen),
        "note": entry.note,
    }


@login_required(login_url=LOGIN_URL)
@require_GET
def earnings(request: HttpRequest) -> HttpResponse:
    """An account's balance, statement (paged, by month if asked) and recent withdrawals."""
    staff = _store_staff(request)
    if staff is None:
        return consumer._notice(request, _("没有收益账户"), _("只有门店人员有收益账户。"), 403)
    which = "store" if request.GET.get("account") == "store" else "me"
    try:
        store, clerk = store_rewards.account_for(staff, which)
    except JiumaError as exc:
        return consumer._notice(request, _("不能查看"), exc.message, exc.status_code)
    month_text = request.GET.get("month", "")[:7]
    month = _month(month_text) if month_text else None
    shown = store_rewards.statement(store, clerk, month, page=request.GET.get("page", "1")[:6] or "1")
    withdrawals = StoreWithdrawal.objects.filter(store=store, clerk=clerk).order_by("-id")[:10]
    context = {
        "staff": staff,
        "store": store,
        "account": which,
        "is_owner": bool(staff.user.has_perm(store_rewards.MANAGE_STORE_PERM)),
        "statement": shown,
        "rows": [_entry_row(entry) for entry in shown.entries],
        "month_text": month.strftime("%Y-%m") if month is not None else "",
        "withdrawals": [
            {
                "at": _local(w.created_at),
                "amount_fen": w.amount_fen,
                "status": w.get_status_display(),
                "reason": w.reason,
            }
            for w in withdrawals
        ],
        "open_withdrawal": store_rewards.open_withdrawal(store, clerk),
        "min_withdrawal_fen": store_rewards.policy().min_withdrawal_fen,
    }
    return render(request, "frontends/store_earnings.html", context)


def _amount_fen(body: dict[str, Any]) -> int | None:
    """The amount asked for: "amount_yuan" (a string or number, at most 2 decimals) or "amount_fen"."""
    if "amount_fen" in body:
        value = body["amount_fen"]
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    raw = body.get("amount_yuan")
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return None
    try:
        amount = Decimal(str(raw).strip()) * 100
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.to_integral_value() or abs(amount) > 10**12:
        return None
    return int(amount)


@require_POST
def withdraw(request: HttpRequest) -> JsonResponse:
    """Request a withdrawal: {"account": "me" | "store", "amount_yuan": "12.50"}."""
    if not request.user.is_authenticated:
        return _refusal("not_authenticated", _("请先登录。"), 401)
    staff = _store_staff(request)
    if staff is None:
        return _refusal("permission_denied", _("只有门店人员可以申请提现。"), 403)
    body = _json_body(request)
    if body is None:
        return _refusal("malformed_request", _("请求内容格式错误。"), 400)
    amount = _amount_fen(body)
    try:
        store, clerk = store_rewards.account_for(staff, str(body.get("account") or "me"))
        if amount is None:
            return _refusal("invalid_withdrawal_amount", _("请输入正确的提现金额。"), 400)
        withdrawal = store_rewards.request_withdrawal(store, clerk, amount, by=request.user.get_username())
    except JiumaError as exc:
        return _from_error(exc)
    return JsonResponse(
        {
            "outcome": "requested",
            "message": _("提现申请已提交：¥%(amount)s，等待品牌审核。") % {"amount": yuan(withdrawal.amount_fen)},
            "withdrawal": withdrawal.pk,
            "amount_fen": withdrawal.amount_fen,
            "balance_fen": store_rewards.balance(store, clerk),
        },
        status=201,
    )


# --- the terminal: QR images to show at the till ------------------------------------------------------


def _png(url: str) -> HttpResponse:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(out)
    response = HttpResponse(out.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required(login_url=LOGIN_URL)
@require_GET
def my_qr(request: HttpRequest) -> HttpResponse:
    """The signed-in store staff's own QR: consumers who scan it tie their cap scan to them."""
    staff = _store_staff(request)
    if staff is None or staff.store is None:
        return consumer._notice(request, _("没有门店码"), _("只有门店人员有自己的门店码。"), 403)
    return _png(_code_host_url(store_rewards.qr_path(staff.store, staff)))


@login_required(login_url=LOGIN_URL)
@require_GET
def store_qr_image(request: HttpRequest) -> HttpResponse:
    """The store's own QR (its owner only)."""
    staff = _store_staff(request)
    if staff is None or staff.store is None or not request.user.has_perm(store_rewards.MANAGE_STORE_PERM):
        return consumer._notice(request, _("没有门店码"), _("只有店主可以查看门店码。"), 403)
    return _png(_code_host_url(store_rewards.qr_path(staff.store)))
