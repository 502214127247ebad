"""Consumer pages of card collecting (集卡): the member's cards, gifting, exchanging a full set.

The member is the one of the brand's signed member cookie (frontends.consumer); a stranger is sent
through the WeChat login and back. Pages (brand hosts):
- GET  `m/cards/`                 each active set: cards with counts and chances, progress, deadline,
                                  reward, 赠送 per card held, 兑换 when complete; open gift links;
- POST `m/cards/gift/`            `card`: a gift link for one of the member's cards → its page;
- GET  `m/cards/g/<token>/`       the gift: to its sender the link to share (and 撤回), to anyone
                                  else 领取; POST there accepts it;
- POST `m/cards/g/<token>/cancel/` the sender takes the card back;
- POST `m/cards/exchange/`        `card_set`: one of each card for the set's reward.

Every POST is CSRF protected (the forms carry the token). A refusal is a 4xx with the service's
Chinese message: a page, or {"code", "message"} when the request accepts JSON.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commerce.models import Member
from frontends import consumer
from rewards.errors import RewardErrorCode as E
from rewards.models import CardGiftStatus
from rewards.services import cards
from tenants.errors import JiumaError


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.content_type == "application/json"


def _refuse(request: HttpRequest, title: str, code: str, message: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False}
        )
    response = render(
        request,
        "frontends/cards_notice.html",
        {"title": title, "message": message, "code": code, "cards_url": reverse("cards")},
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


def _refused(request: HttpRequest, title: str, exc: JiumaError) -> HttpResponse:
    return _refuse(request, title, exc.code, exc.message, exc.status_code)


def _member(request: HttpRequest, back: str) -> Member | HttpResponse:
    """The signed-in member, or the way to sign in (back to `back`): a redirect through the WeChat
    login for a page, 401 for a JSON request."""
    member = consumer.current_member(request)
    if member is not None:
        return member
    if _wants_json(request):
        return JsonResponse(
            {"code": E.NOT_IDENTIFIED.value, "message": _("请先登录。")},
            status=401,
            json_dumps_params={"ensure_ascii": False},
        )
    return HttpResponseRedirect(consumer.login_path(request, back))


def _number(request: HttpRequest, name: str) -> int | None:
    raw = request.POST.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.setdefault("tenant", request.tenant)  # type: ignore[attr-defined]
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def cards_home(request: HttpRequest) -> HttpResponse:
    member = _member(request, request.get_full_path())
    if isinstance(member, HttpResponse):
        return member
    progress = cards.holdings(member)
    gifts = cards.pending_gifts(member)
    if _wants_json(request):
        return JsonResponse({"sets": [_set_json(row) for row in progress]}, json_dumps_params={"ensure_ascii": False})
    context = {"member": member, "sets": progress, "gifts": gifts, "now": timezone.now()}
    return _page(request, "frontends/cards.html", context)


def _set_json(row: cards.SetProgress) -> dict[str, Any]:
    card_set = row.card_set
    return {
        "id": card_set.pk,
        "name": card_set.name,
        "reward": card_set.reward_name,
        "exchange_ends_at": card_set.exchange_ends_at.isoformat(),
        "collected": row.collected,
        "total": row.total,
        "complete": row.complete,
        "exchanges": row.used,
        "exchanges_left": row.left,
        "can_exchange": row.can_exchange,
        "cards": [{"id": c.card.pk, "name": c.card.name, "count": c.count, "chance": c.share} for c in row.cards],
    }


@require_POST
def gift(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("cards"))
    if isinstance(member, HttpResponse):
        return member
    card_id = _number(request, "card")
    if card_id is None:
        return _refuse(request, _("无法赠送"), E.CARD_NOT_FOUND, _("请选择要赠送的卡片。"), 400)
    try:
        made = cards.gift(member, card_id)
    except JiumaError as exc:
        return _refused(request, _("无法赠送"), exc)
    url = reverse("card-gift", args=[made.token])
    if _wants_json(request):
        return JsonResponse(
            {
                "gift": made.pk,
                "card": made.card.name,
                "url": request.build_absolute_uri(url),
                "expires_at": made.expires_at.isoformat(),
            },
            status=201,
            json_dumps_params={"ensure_ascii": False},
        )
    return HttpResponseRedirect(url, status=303)


@require_http_methods(["GET", "POST"])
def gift_page(request: HttpRequest, token: str) -> HttpResponse:
    """A gift link: its sender sees the link to share; anyone else (signed in) may accept it."""
    found = cards.gift_by_token(token)
    if found is None:
        return _refuse(request, _("赠送链接无效"), E.CARD_GIFT_NOT_FOUND, _("赠送链接无效或已失效。"), 404)
    member = _member(request, reverse("card-gift", args=[token]))
    if isinstance(member, HttpResponse):
        return member
    if request.method == "POST":
        try:
            taken = cards.accept(member, token)
        except JiumaError as exc:
            return _refused(request, _("无法领取"), exc)
        if _wants_json(request):
            return JsonResponse(
                {"gift": taken.pk, "card": taken.card.name, "status": taken.status},
                json_dumps_params={"ensure_ascii": False},
            )
        return _page(request, "frontends/cards_gift.html", {"gift": taken, "mine": False, "accepted_now": True})
    mine = found.sender_id == member.pk
    context = {
        "gift": found,
        "mine": mine,
        "link": request.build_absolute_uri(reverse("card-gift", args=[token])),
        "expired": found.status == CardGiftStatus.PENDING and timezone.now() >= found.expires_at,
        "accepted_by_me": found.receiver_id == member.pk,
    }
    return _page(request, "frontends/cards_gift.html", context)


@require_POST
def gift_cancel(request: HttpRequest, token: str) -> HttpResponse:
    member = _member(request, reverse("cards"))
    if isinstance(member, HttpResponse):
        return member
    found = cards.gift_by_token(token)
    if found is None or found.sender_id != member.pk:
        return _refuse(request, _("无法撤回"), E.CARD_GIFT_NOT_FOUND, _("没有找到这次赠送。"), 404)
    try:
        cards.cancel(member, found.pk)
    except JiumaError as exc:
        return _refused(request, _("无法撤回"), exc)
    if _wants_json(request):
        return JsonResponse({"gift": found.pk, "status": CardGiftStatus.CANCELLED.value})
    return HttpResponseRedirect(reverse("cards"), status=303)


@require_POST
def exchange(request: HttpRequest) -> HttpResponse:
    member = _member(request, reverse("cards"))
    if isinstance(member, HttpResponse):
        return member
    card_set_id = _number(request, "card_set")
    if card_set_id is None:
        return _refuse(request, _("无法兑换"), E.CARD_SET_NOT_FOUND, _("请选择要兑换的套系。"), 400)
    try:
        done = cards.exchange(member, card_set_id)
    except JiumaError as exc:
        return _refused(request, _("无法兑换"), exc)
    if _wants_json(request):
        body: dict[str, Any] = {
            "redemption": done.redemption.pk,
            "number": done.redemption.number,
            "reward_kind": done.card_set.reward_kind,
            "reward": done.card_set.reward_name,
        }
        if done.payout is not None:
            body["payout"] = {"amount_fen": done.payout.amount_fen, "status": done.payout.status}
        if done.points_entry is not None:
            body["points"] = done.points_entry.amount
        if done.code is not None:
            body["code"] = done.code.code
        return JsonResponse(body, status=201, json_dumps_params={"ensure_ascii": False})
    return _page(
        request,
        "frontends/cards_exchanged.html",
        {"done": done, "wallet_url": reverse("member-home")},
    )
