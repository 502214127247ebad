"""Consumer identity and the member centre: WeChat login, the member's own data, privacy consent.

A consumer is identified through the brand's official account (commerce.wechat.oauth). The result
is a signed cookie per brand (its name carries the brand number, so the shared short code host can
hold one per brand) naming the member; it lasts MEMBER_SESSION_DAYS. The OAuth `state` is a random
value also kept in a short signed cookie with the page to return to, so a callback not started in
this browser is refused (login CSRF).

Pages (brand hosts, and under a scan path `/C/<code>/...` on the code host, which routes by the
brand number in the code):
- `wx/login/?next=` → WeChat's authorize page; `wx/callback/` ← WeChat, sets the member cookie;
- `m/me/` the member's profile, points and consents; `m/me/export/` a JSON copy of their data;
  `m/me/erase/` (POST, confirmed) deletes their personal data; `m/privacy/` the policy text and
  (POST) the consent to it.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.models import ConsentPurpose, Member, PointsEntry
from commerce.services import members
from commerce.wechat import config as wechat_config
from commerce.wechat.oauth import oauth_client
from tenants.errors import JiumaError

_MEMBER_SALT = "jiuma.consumer.member"
_STATE_SALT = "jiuma.consumer.oauth-state"
_STATE_COOKIE = "jm_oauth"
_STATE_SECONDS = 10 * 60


def member_cookie(tenant_number: int, member_id: int) -> tuple[str, str]:
    """The name and signed value of the cookie naming `member_id` at brand `tenant_number`."""
    value = signing.dumps([tenant_number, member_id], salt=_MEMBER_SALT, compress=False)
    return f"jm_member_{tenant_number}", value


def member_cookie_name(request: HttpRequest) -> str:
    return f"jm_member_{request.tenant.number}"  # type: ignore[attr-defined]


def current_member(request: HttpRequest) -> Member | None:
    """The identified member of this brand on this browser, or None (one query when signed in)."""
    cached: Member | None = getattr(request, "_jiuma_member", None)
    if cached is not None:
        return cached
    raw = request.COOKIES.get(member_cookie_name(request))
    if not raw:
        return None
    try:
        payload = signing.loads(raw, salt=_MEMBER_SALT, max_age=settings.MEMBER_SESSION_DAYS * 86400)
        number, member_id = payload
        member_id = int(member_id)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if number != request.tenant.number:  # type: ignore[attr-defined]
        return None
    # The privacy consent the pages check is read with the member (one query).
    member = members.signed_in_member(member_id, ConsentPurpose.PRIVACY_POLICY, version=settings.PRIVACY_POLICY_VERSION)
    request._jiuma_member = member  # type: ignore[attr-defined]
    return member


def sign_in(response: HttpResponse, request: HttpRequest, member: Member) -> HttpResponse:
    name, value = member_cookie(request.tenant.number, member.pk)  # type: ignore[attr-defined]
    response.set_cookie(
        name,
        value,
        max_age=settings.MEMBER_SESSION_DAYS * 86400,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    return response


_domains: dict[int, tuple[float, str | None]] = {}
_DOMAIN_SECONDS = 60.0


def _primary_domain(tenant: Any) -> str | None:
    """The brand's primary domain, kept per process for a minute (it rarely changes)."""
    import time

    from tenants.models import Domain

    cached = _domains.get(tenant.pk)
    clock = time.monotonic()
    if cached is None or cached[0] <= clock:
        domain = Domain.objects.filter(tenant_id=tenant.pk, is_primary=True).values_list("domain", flat=True).first()
        cached = (clock + _DOMAIN_SECONDS, domain)
        _domains[tenant.pk] = cached
    return cached[1]


def brand_url(request: HttpRequest, path: str) -> str:
    """`path` on the brand's own site (its primary domain), from any host serving the brand (e.g.
    the short code host, which routes only scan paths): same scheme and port as this request."""
    domain = _primary_domain(request.tenant)  # type: ignore[attr-defined]
    if not domain or domain == request.get_host().split(":")[0]:
        return path
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    host = domain if port in ("", default) else f"{domain}:{port}"
    return f"{request.scheme}://{host}{path}"


def share_url(request: HttpRequest, member: Member) -> str:
    """The member's share link (邀请有礼) on the brand's site: it opens the share page for them and
    the invitation for whoever they send it to."""
    from rewards.services import referrals

    path = reverse("invite-accept", args=[referrals.link_token(member)])
    url = brand_url(request, path)
    return url if "://" in url else request.build_absolute_uri(path)


def _safe_next(request: HttpRequest, target: str | None, default: str) -> str:
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts=None) and target.startswith("/"):
        return target
    return default


def _notice(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    return render(request, "frontends/notice.html", {"title": title, "message": message}, status=status)


def login_path(request: HttpRequest, next_path: str, code: str | None = None) -> str:
    """Where to send a consumer who must be identified first (back to `next_path` afterwards)."""
    base = f"/C/{code}/wx/login" if code else reverse("wx-login")
    return f"{base}?{_query(next=next_path)}"


def _query(**params: str) -> str:
    return urlencode(params)


@require_GET
def wx_login(request: HttpRequest, code: str | None = None) -> HttpResponse:
    default = f"/C/{code}" if code else reverse("member-home")
    target = _safe_next(request, request.GET.get("next"), default)
    try:
        account = wechat_config.require()
    except JiumaError as exc:
        return _notice(request, _("暂时无法登录"), exc.message, exc.status_code)
    state = secrets.token_urlsafe(16)
    callback = f"/C/{code}/wx/callback" if code else reverse("wx-callback")
    redirect_uri = request.build_absolute_uri(callback)
    response = HttpResponseRedirect(oauth_client(account).authorize_url(redirect_uri, state))
    response.set_cookie(
        _STATE_COOKIE,
        signing.dumps([state, target], salt=_STATE_SALT, compress=False),
        max_age=_STATE_SECONDS,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    return response


@require_GET
def wx_callback(request: HttpRequest, code: str | None = None) -> HttpResponse:
    try:
        state, target = signing.loads(request.COOKIES.get(_STATE_COOKIE, ""), salt=_STATE_SALT, max_age=_STATE_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return _notice(request, _("登录已过期"), _("请返回重新进入页面。"), 400)
    if not secrets.compare_digest(str(request.GET.get("state", "")), str(state)):
        return _notice(request, _("登录失败"), _("登录请求无效，请返回重新进入页面。"), 400)
    try:
        account = wechat_config.require()
        identity = oauth_client(account).identify(str(request.GET.get("code", "")))
        member, _created = members.identify(identity)
    except JiumaError as exc:
        return _notice(request, _("登录失败"), exc.message, exc.status_code)
    response = sign_in(HttpResponseRedirect(_safe_next(request, target, reverse("member-home"))), request, member)
    response.delete_cookie(_STATE_COOKIE)
    return response


def _require_member(request: HttpRequest) -> Member | HttpResponse:
    member = current_member(request)
    if member is None:
        return HttpResponseRedirect(login_path(request, request.get_full_path()))
    return member


@require_GET
def member_home(request: HttpRequest) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    from rewards.models import Claim, PayoutStatus

    entries = list(PointsEntry.objects.filter(member=member).order_by("-id")[:50])
    prizes = list(
        Claim.objects.filter(member=member, prize__isnull=False)
        .select_related("prize", "campaign", "payout", "card")
        .order_by("-id")[:20]
    )
    account = wechat_config.load()
    context: dict[str, Any] = {
        "member": member,
        "entries": entries,
        "prizes": prizes,
        "submitted": PayoutStatus.SUBMITTED,
        "mchid": account.mchid if account is not None else "",
        "appid": account.appid if account is not None else "",
        "simulated": settings.WECHAT_SIMULATED,
        "privacy_accepted": members.has_consent(
            member, ConsentPurpose.PRIVACY_POLICY, version=settings.PRIVACY_POLICY_VERSION
        ),
        "tenant": request.tenant,  # type: ignore[attr-defined]
    }
    response = render(request, "frontends/member_home.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def member_export(request: HttpRequest) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    from rewards.selectors import member_export

    data = members.export(member)
    data["rewards"] = member_export(member)
    data["exported_at"] = timezone.localtime().isoformat()
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 2})
    stamp = timezone.localtime().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def member_erase(request: HttpRequest) -> HttpResponse:
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    if request.method == "GET" or request.POST.get("confirm") != "erase":
        return render(request, "frontends/member_erase.html", {"member": member}, status=200)
    members.erase(member)
    response = _notice(request, _("已注销"), _("您在本品牌的个人信息已删除。再次扫码将作为新会员。"), 200)
    response.delete_cookie(member_cookie_name(request))
    return response


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    member = current_member(request)
    accepted = member is not None and members.has_consent(
        member, ConsentPurpose.PRIVACY_POLICY, version=settings.PRIVACY_POLICY_VERSION
    )
    context = {"version": settings.PRIVACY_POLICY_VERSION, "member": member, "accepted": accepted}
    context["tenant"] = request.tenant  # type: ignore[attr-defined]
    context["next"] = _safe_next(request, request.GET.get("next"), reverse("member-home"))
    return render(request, "frontends/privacy.html", context)


@require_POST
def privacy_consent(request: HttpRequest) -> HttpResponse:
    """The member accepts (or withdraws) the current privacy policy: form field `decision`."""
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    decision = request.POST.get("decision")
    if decision not in {"accept", "withdraw"}:
        if request.content_type == "application/json":
            return JsonResponse({"code": "invalid_consent", "message": _("请选择同意或撤回。")}, status=400)
        return _notice(request, _("操作无效"), _("请选择同意或撤回。"), 400)
    members.record_consent(
        member,
        ConsentPurpose.PRIVACY_POLICY,
        version=settings.PRIVACY_POLICY_VERSION,
        granted=decision == "accept",
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    return HttpResponseRedirect(_safe_next(request, request.POST.get("next"), reverse("member-home")))


@require_POST
def simulate_confirm(request: HttpRequest, payout_id: int) -> HttpResponse:
    """Demo only (WECHAT_SIMULATED): what tapping "确认收款" inside WeChat does, done through the local
    simulator's control API, since a desktop browser has no WeChat to open."""
    import urllib.request

    from rewards.models import Payout, PayoutStatus

    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    if not settings.WECHAT_SIMULATED:
        return _notice(request, _("无法操作"), _("请在微信中确认收款。"), 404)
    payout = Payout.objects.filter(pk=payout_id, member=member, status=PayoutStatus.SUBMITTED).first()
    if payout is None:
        return _notice(request, _("无法操作"), _("没有待确认的红包。"), 404)
    url = f"{settings.WECHAT_PAY_BASE_URL.rstrip('/')}/_sim/transfers/{payout.out_bill_no}/confirm"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"{}"), timeout=5):  # noqa: S310
        pass
    return HttpResponseRedirect(reverse("member-home"))


@require_GET
def invite(request: HttpRequest) -> HttpResponse:
    """The member's own share link and who accepted it."""
    from rewards.models import Referral, ReferralStatus
    from rewards.services import referrals

    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    link = share_url(request, member)
    made = Referral.objects.filter(inviter=member)
    context = {
        "link": link,
        "invited": made.count(),
        "rewarded": made.filter(status=ReferralStatus.REWARDED).count(),
        "program": referrals.program(),
    }
    return render(request, "frontends/invite.html", context)


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """A share link: the (signed-in) visitor accepts the invitation."""
    from rewards.services import referrals

    inviter = referrals.inviter_of(token)
    if inviter is None:
        return _notice(request, _("邀请无效"), _("邀请链接无效或已失效。"), 404)
    member = _require_member(request)
    if isinstance(member, HttpResponse):
        return member
    if request.method == "GET":
        context: dict[str, Any] = {"inviter": inviter, "program": referrals.program()}
        if inviter.pk == member.pk:  # the inviter opened their own link: the page to share it from
            context["link"] = request.build_absolute_uri()
            context["in_wechat"] = "MicroMessenger" in request.META.get("HTTP_USER_AGENT", "")
            return render(request, "frontends/invite_share.html", context)
        return render(request, "frontends/invite_accept.html", context)
    try:
        referrals.accept(inviter, member)
    except JiumaError as exc:
        return _notice(request, _("无法接受邀请"), exc.message, exc.status_code)
    return _notice(request, _("已接受邀请"), _("开瓶扫码参与活动，您和好友都将获得酒币奖励。"), 200)
