"""Distribution pages (分销): the public rules, an affiliate's share link (binds the visitor), and the
signed-in member's affiliate centre (apply, balances by state, entries, withdrawals).

URLs in frontends/urls_distribution.py. The rules are read from the brand's DistributionPolicy, so
the page always says what the services do: two levels at most, commission only from paid orders,
withdrawable once the after-sales window closed, reversed on refund, no fee ever.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.models import (
    Affiliate,
    AffiliateStatus,
    CommissionEntry,
    CommissionWithdrawal,
    OrderStatus,
    ShopPolicy,
)
from commerce.services import distribution
from frontends.consumer import _notice, _require_member
from tenants.errors import JiumaError


def _percent(bp: int) -> str:
    return f"{Decimal(bp) / 100:.2f}".rstrip("0").rstrip(".")


@require_GET
def rules(request: HttpRequest) -> HttpResponse:
    """The brand's distribution rules, public."""
    policy = distribution.policy()
    shop = ShopPolicy.current()
    context: dict[str, Any] = {
        "policy": policy,
        "rate_l1": _percent(policy.rate_l1_bp),
        "rate_l2": _percent(policy.rate_l2_bp),
        "after_sales_days": shop.after_sales_days,
        "auto_receive_days": shop.auto_receive_days,
        "tenant": request.tenant,  # type: ignore[attr-defined]
    }
    return render(request, "frontends/distribution_rules.html", context)


@require_GET
def share(request: HttpRequest, token: str) -> HttpResponse:
    """An affiliate's share link: the signed-in visitor is bound to the affiliate (first one wins)."""
    if distribution.affiliate_of(token) is None:
        return _notice(request, _("链接无效"), _("分享链接无效或已失效。"), 404)
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    try:
        distribution.bind(member, token)
    except JiumaError as exc:
        if exc.code not in ("self_binding", "already_bound"):
            return _notice(request, _("无法绑定"), exc.message, exc.status_code)
    return HttpResponseRedirect(reverse("brand-home"))


@require_GET
def centre(request: HttpRequest) -> HttpResponse:
    """The member's affiliate centre: apply, or balances, share link, entries and withdrawals."""
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    policy = distribution.policy()
    found = Affiliate.objects.filter(member=member).first()
    context: dict[str, Any] = {"policy": policy, "affiliate": found, "active": AffiliateStatus.ACTIVE}
    if found is not None:
        context["balances"] = distribution.balances(found)
        context["entries"] = list(
            CommissionEntry.objects.filter(affiliate=found).select_related("order_line").order_by("-id")[:50]
        )
        context["withdrawals"] = list(CommissionWithdrawal.objects.filter(affiliate=found).order_by("-id")[:20])
        context["open_withdrawal"] = next(
            (w for w in context["withdrawals"] if w.status in ("requested", "approved")), None
        )
        if found.status == AffiliateStatus.ACTIVE:
            path = reverse("distribution-share", args=[distribution.link_token(found)])
            context["link"] = request.build_absolute_uri(path)
    context["completed"] = OrderStatus.COMPLETED
    response = render(request, "frontends/distribution_centre.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def apply(request: HttpRequest) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    try:
        distribution.apply(member)
    except JiumaError as exc:
        return _notice(request, _("无法申请"), exc.message, exc.status_code)
    return HttpResponseRedirect(reverse("distribution-centre"))


@require_POST
def withdraw(request: HttpRequest) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    found = Affiliate.objects.filter(member=member).first()
    if found is None:
        return _notice(request, _("无法提现"), _("您还不是分销员。"), 403)
    try:
        amount = Decimal(str(request.POST.get("amount", "")).strip())
        amount_fen = int((amount * 100).to_integral_exact())
    except (InvalidOperation, ValueError):
        return _notice(request, _("无法提现"), _("提现金额无效。"), 400)
    try:
        distribution.request_withdrawal(found, amount_fen)
    except JiumaError as exc:
        return _notice(request, _("无法提现"), exc.message, exc.status_code)
    return HttpResponseRedirect(reverse("distribution-centre"))


@require_http_methods(["POST"])
def cancel_withdrawal(request: HttpRequest, withdrawal_id: int) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    found = CommissionWithdrawal.objects.filter(pk=withdrawal_id, affiliate__member=member).first()
    if found is None:
        return _notice(request, _("提现不存在"), _("提现记录不存在。"), 404)
    try:
        distribution.cancel_withdrawal(found, member=member)
    except JiumaError as exc:
        return _notice(request, _("无法撤销"), exc.message, exc.status_code)
    return HttpResponseRedirect(reverse("distribution-centre"))
