"""Terminal H5 for outbound and receiving: a phone or a handheld scanner typing codes + Enter.

Who may scan what:
- brand staff holding codes.add_movement: outbound (出库) of cases to a dealer they pick;
- a dealer's people: receipt of cases at their own dealer (recorded as the outbound to it);
- a store's people: receiving (入库) into their own store, redeeming (核销) consumers' prizes, and
  the store rewards section (服务员扫码, 我的收益 / 提现, their QR codes: frontends.store).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from codes import channel
from codes.models import MovementKind
from commerce.models import ChannelStatus, Dealer
from commerce.selectors import channel_staff_of

LOGIN_URL = "/t/login/"


def _mode(request: HttpRequest) -> dict[str, Any] | None:
    """What this user scans, or None if nothing."""
    user: Any = request.user
    staff = channel_staff_of(user)
    if staff is not None:
        if staff.store_id is not None and staff.store is not None:
            return {
                "kind": MovementKind.RECEIVE,
                "store": staff.store,
                "staff": staff,
                "label": _("门店入库：%(n)s") % {"n": staff.store.name},
            }
        if staff.dealer is not None:
            return {
                "kind": MovementKind.OUTBOUND,
                "dealer": staff.dealer,
                "label": _("经销商收货：%(n)s") % {"n": staff.dealer.name},
            }
    if getattr(user, "is_staff", False) and user.has_perm("codes.add_movement"):
        return {"kind": MovementKind.OUTBOUND, "dealer": None, "label": _("出库到经销商")}
    return None


def terminal_login(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        user = authenticate(
            request, username=request.POST.get("username", ""), password=request.POST.get("password", "")
        )
        if user is None:
            error = _("用户名或密码错误。")
        else:
            login(request, user)
            return redirect("terminal")
    return render(request, "frontends/terminal_login.html", {"error": error})


@login_required(login_url=LOGIN_URL)
def terminal(request: HttpRequest) -> HttpResponse:
    mode = _mode(request)
    if mode is None:
        logout(request)
        return render(request, "frontends/terminal_login.html", {"error": _("该账号没有出入库权限。")}, status=403)
    dealers = (
        Dealer.objects.filter(status=ChannelStatus.ACTIVE).order_by("code")
        if mode.get("dealer") is None and mode["kind"] == MovementKind.OUTBOUND
        else []
    )
    context: dict[str, Any] = {"mode": mode, "dealers": dealers}
    if mode.get("staff") is not None:  # a store's staff: store rewards too (服务员扫码, 收益, 门店码)
        from frontends import store as store_pages

        context["rewards"] = store_pages.panel(request, mode["staff"])
    return render(request, "frontends/terminal.html", context)


@require_POST
def terminal_scan(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"code": "not_authenticated", "message": _("请先登录。")}, status=401)
    mode = _mode(request)
    if mode is None:
        return JsonResponse({"code": "permission_denied", "message": _("该账号没有出入库权限。")}, status=403)
    try:
        body = json.loads(request.body or b"{}")
        text = str(body.get("code", ""))[:200]
        dealer_id = body.get("dealer_id")
    except (ValueError, AttributeError):
        return JsonResponse({"code": "malformed_request", "message": _("请求内容格式错误。")}, status=400)
    dealer = mode.get("dealer")
    if mode["kind"] == MovementKind.OUTBOUND and dealer is None:
        dealer = (
            Dealer.objects.filter(pk=dealer_id, status=ChannelStatus.ACTIVE).first()
            if str(dealer_id).isdigit()
            else None
        )
        if dealer is None:
            return JsonResponse({"code": "invalid_movement", "message": _("请先选择经销商。")}, status=400)
    if not text.strip():
        return JsonResponse({"code": "invalid_movement", "message": _("请扫描箱码。")}, status=400)
    user: Any = request.user
    try:
        result = channel.record_movement(
            text, mode["kind"], dealer=dealer, store=mode.get("store"), by_name=user.get_username(), source="terminal"
        )
    except ValueError:  # the store or dealer was suspended
        return JsonResponse({"code": "channel_suspended", "message": _("门店或经销商已停用，不能扫码。")}, status=409)
    return JsonResponse({"outcome": str(result.outcome), "message": result.message, "bottles": result.bottles})


@require_POST
def terminal_redeem(request: HttpRequest) -> JsonResponse:
    """A store's staff redeem (核销) a consumer's prize code: {"code"} → the prize handed over."""
    from rewards.services import redemptions
    from tenants.errors import JiumaError

    if not request.user.is_authenticated:
        return JsonResponse({"code": "not_authenticated", "message": _("请先登录。")}, status=401)
    mode = _mode(request)
    if mode is None or mode.get("store") is None:
        return JsonResponse({"code": "permission_denied", "message": _("只有门店人员可以核销奖品。")}, status=403)
    try:
        body = json.loads(request.body or b"{}")
        text = str(body.get("code", ""))[:64]
    except (ValueError, AttributeError):
        return JsonResponse({"code": "malformed_request", "message": _("请求内容格式错误。")}, status=400)
    user: Any = request.user
    try:
        done = redemptions.redeem(text, store=mode["store"], staff=user.get_username())
    except JiumaError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message}, status=exc.status_code)
    message = _("核销成功：%(prize)s") % {"prize": done.prize_name}
    return JsonResponse({"outcome": "redeemed", "message": message, "prize": done.prize_name})
