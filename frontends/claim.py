"""The reward part of an inner-code scan page (scan → identify → draw → prize), at the edge:
codes/ has verified and recorded the scan; rewards/ draws; this module joins them for the page.

An identified member who has accepted the privacy policy draws on the scan itself: the page that
opens under the cap already shows the prize (the draw of a cap is made once, so opening the page
again shows the same result). Otherwise the page says what is missing: WeChat login (automatic
inside WeChat), or the consent, given with one tap (POST /C/<code>/consent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from codes import format as code_format
from codes.channel import bottle_path
from codes.scanning import ScanResult, Verdict
from commerce.models import ConsentPurpose, Member
from commerce.services import members
from frontends import consumer
from rewards.errors import RewardErrorCode
from rewards.models import Claim
from rewards.services import claims, store_rewards
from rewards.services.claims import ClaimContext
from tenants.errors import JiumaError


@dataclass
class ClaimView:
    """What the scan page shows about the cap's reward."""

    state: str  # "result", "login", "consent", "closed", "none"
    claim: Claim | None = None
    mine: bool = False
    message: str = ""
    login_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def for_scan(request: HttpRequest, code_text: str, result: ScanResult, member: Member | None) -> ClaimView | None:
    """The reward part of the page of a scanned inner code, or None for any other code."""
    code = result.code
    if code is None or code.kind != code_format.Kind.INNER or result.verdict != Verdict.GENUINE:
        return None
    if result.status is None:
        return ClaimView("closed", message=_("该瓶尚未进入销售流通，暂不能参与扫码活动。"))
    links = {
        "wallet_url": consumer.brand_url(request, "/m/me/"),
        "privacy_url": consumer.brand_url(request, "/m/privacy/"),
    }
    # A cap's first scan cannot have been claimed (a claim follows a scan of its cap): no lookup.
    existing = None if result.is_first else claims.existing_claim(code.serial)
    if existing is not None:
        mine = member is not None and existing.member_id == member.pk
        message = "" if mine else _("这个瓶盖的奖励已经被领取过了。")
        if mine and member is not None:
            links["share_url"] = consumer.share_url(request, member)
        return ClaimView("result", claim=existing, mine=mine, message=message, extra=links)
    if member is None:
        return ClaimView(
            "login",
            login_url=consumer.login_path(request, f"/C/{code_text}", code=code_text),
            extra={"in_wechat": "MicroMessenger" in request.META.get("HTTP_USER_AGENT", ""), **links},
        )
    if not members.has_consent(member, ConsentPurpose.PRIVACY_POLICY, version=settings.PRIVACY_POLICY_VERSION):
        return ClaimView("consent", extra=links)
    # The bottle's dealer and the store it was received at, in one statement.
    path = bottle_path(code.serial)
    # The store the scan is tied to: a store or clerk QR scanned at the till a moment ago (its
    # cookie), else the store the bottle was received at (store rewards, 开瓶奖励).
    store_id, clerk_id = store_rewards.tie_for(
        code.serial,
        request.COOKIES.get(store_rewards.tie_cookie_name()),
        received_store_id=path.store_id if path is not None else None,
    )
    context = ClaimContext(
        serial=code.serial,
        scan_id=result.scan_id,
        batch_id=result.batch.pk if result.batch is not None else None,
        sku_id=result.batch.sku_id if result.batch is not None else None,
        region_code=result.region_code,
        dealer_id=path.dealer_id if path is not None else None,
        ip=request.META.get("REMOTE_ADDR"),
        device=request.COOKIES.get("jm_device", "")[:64],
        store_id=store_id,
        clerk_id=clerk_id,
    )
    try:
        drawn = claims.claim(member, context)
    except JiumaError as exc:
        if exc.code == RewardErrorCode.ALREADY_CLAIMED:
            found = claims.existing_claim(code.serial)
            mine = found is not None and found.member_id == member.pk
            return ClaimView("result", claim=found, mine=mine, extra=links)
        return ClaimView("none", message=exc.message, extra=links)
    links["share_url"] = consumer.share_url(request, member)
    return ClaimView("result", claim=drawn.claim, mine=True, extra={"fresh": True, **links})


@require_POST
def consent(request: HttpRequest, code: str) -> HttpResponse:
    """The member accepts the privacy policy from the scan page, and goes back to draw."""
    member = consumer.current_member(request)
    if member is None:
        return HttpResponseRedirect(consumer.login_path(request, f"/C/{code}", code=code))
    if request.POST.get("decision") == "accept":
        members.record_consent(
            member,
            ConsentPurpose.PRIVACY_POLICY,
            version=settings.PRIVACY_POLICY_VERSION,
            granted=True,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    return HttpResponseRedirect(f"/C/{code}")


def _rules_page(request: HttpRequest, campaign: Any) -> HttpResponse:
    from django.shortcuts import render

    prizes = list(campaign.prizes.order_by("position", "id"))
    context = {
        "campaign": campaign,
        "prizes": prizes,
        "odds_total_ppm": sum(prize.odds_ppm for prize in prizes),
        "tenant": request.tenant,  # type: ignore[attr-defined]
    }
    response = render(request, "frontends/rules.html", context)
    response["Cache-Control"] = "public, max-age=60"
    return response


def rules(request: HttpRequest, code: str) -> HttpResponse:
    """The rules of the campaign a cap entered (or would enter now)."""
    from django.utils import timezone

    from codes.keyring import check
    from rewards import selectors

    parsed = check(code, tenant_number=getattr(request.tenant, "number", None))  # type: ignore[attr-defined]
    campaign = None
    if parsed is not None:
        existing = claims.existing_claim(parsed.serial)
        campaign = existing.campaign if existing is not None else None
        if campaign is None:
            running = selectors.running_campaigns(timezone.now())
            campaign = running[0] if running else None
    if campaign is None:
        return consumer._notice(request, _("暂无活动"), _("当前没有进行中的扫码活动。"), 404)
    return _rules_page(request, campaign)


def campaign_rules(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A published campaign's public rules page (a draft or cancelled one is not public)."""
    from rewards.models import Campaign, CampaignStatus

    campaign = Campaign.objects.filter(
        pk=campaign_id, status__in=[CampaignStatus.PUBLISHED, CampaignStatus.ENDED]
    ).first()
    if campaign is None:
        return consumer._notice(request, _("活动不存在"), _("没有找到这个活动。"), 404)
    return _rules_page(request, campaign)


def campaign_draws(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Every draw of an ended campaign with its revealed seed, for anyone to recompute (JSON)."""
    from django.http import JsonResponse

    from rewards.models import Campaign, CampaignStatus
    from rewards.services import campaigns

    campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.ENDED).first()
    if campaign is None:
        return JsonResponse({"code": "campaign_not_ended", "message": _("活动结束后公开全部抽奖记录。")}, status=404)
    table = [
        {"prize": prize.pk, "name": prize.name, "odds_ppm": prize.odds_ppm}
        for prize in campaign.prizes.order_by("position", "id")
    ]
    rows = [
        {
            "serial": row["serial"],
            "ticket": row["ticket"],
            "outcome": row["outcome"],
            "prize": row["prize"],
            **({"card": row["card"]} if "card" in row else {}),
        }
        for row in campaigns.audit_rows(campaign)
    ]
    return JsonResponse(
        {
            "campaign": campaign.pk,
            "seed_commitment": campaign.seed_commitment,
            "seed": campaign.seed_revealed,
            "method": "ticket = (first 8 bytes of HMAC-SHA256(seed, 'jiuma-draw|<campaign>|<serial>') * 1000000) >> 64",
            "card_method": (
                "a card prize gives the card at point = (first 8 bytes of HMAC-SHA256(seed, "
                "'jiuma-card|<campaign>|<serial>') * total weight) >> 64 along the set's cumulative weights "
                "(cards in published order)"
            ),
            "prize_table": table,
            "draws": rows,
        },
        json_dumps_params={"ensure_ascii": False},
    )
