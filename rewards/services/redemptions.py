"""Physical prizes: a one-time code for the winner, redeemed (核销) once by a store in the terminal H5.

The code is 12 Crockford base32 characters from the system's CSPRNG (60 bits: not guessable, read
out or typed easily; look-alikes accepted when typed). Redeeming is one guarded UPDATE (issued and
not expired → redeemed), so two tills entering the same code at once hand the prize over once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import ChannelStatus, Store
from rewards.models import CardSet, CardSetRedemption, Claim, Redemption, RedemptionStatus
from tenants.errors import Conflict, JiumaError, NotFound

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
VALID_AFTER_CAMPAIGN = timedelta(days=30)
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


def normalise(text: str) -> str:
    return (text or "").strip().upper().translate(_ALIASES)[:32]


def new_code() -> str:
    """A fresh redemption code: LENGTH characters of ALPHABET from the system's CSPRNG."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def _create_unique(existing: Callable[[], Redemption | None], values: dict[str, Any]) -> Redemption:
    """The Redemption of `values` with a fresh code (drawn again on the rare clash), or the one
    `existing` finds when a concurrent call made it first."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Redemption.objects.create(code=new_code(), **values)
        except IntegrityError:
            found = existing()
            if found is not None:
                return found
    raise RuntimeError("could not draw a unique redemption code")  # pragma: no cover - 2^60 codes


def issue(claim: Claim, *, now: datetime | None = None) -> Redemption:
    """The redemption code of a won physical prize (made once per claim)."""
    now = now or timezone.now()
    found = Redemption.objects.filter(claim=claim).first()
    if found is not None:
        return found
    assert claim.prize is not None
    expires = max(claim.campaign.ends_at, now) + VALID_AFTER_CAMPAIGN
    return _create_unique(
        lambda: Redemption.objects.filter(claim=claim).first(),
        {
            "claim": claim,
            "member_id": claim.member_id,
            "prize": claim.prize,
            "prize_name": claim.prize.name,
            "expires_at": expires,
            "created_at": now,
        },
    )


def issue_for_set(set_redemption: CardSetRedemption, card_set: CardSet, *, now: datetime | None = None) -> Redemption:
    """The redemption code of a full card set whose reward is physical (made once per exchange)."""
    now = now or timezone.now()
    found = Redemption.objects.filter(set_redemption=set_redemption).first()
    if found is not None:
        return found
    expires = max(card_set.exchange_ends_at, now) + VALID_AFTER_CAMPAIGN
    return _create_unique(
        lambda: Redemption.objects.filter(set_redemption=set_redemption).first(),
        {
            "set_redemption": set_redemption,
            "member_id": set_redemption.member_id,
            "prize": None,
            "prize_name": card_set.reward_name,
            "expires_at": expires,
            "created_at": now,
        },
    )


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    prize_name: str


def redeem(text: str, *, store: Store, staff: str, now: datetime | None = None) -> Redeemed:
    """Hand over the prize of code `text` at `store`. Refused (with the reason) when the code is
    unknown, used, expired or void, or the store is not active."""
    now = now or timezone.now()
    if store.status != ChannelStatus.ACTIVE:
        raise Conflict("store_suspended", _("门店已停用，不能核销。"))
    code = normalise(text)
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        raise JiumaError("invalid_redemption_code", _("核销码格式不正确，请核对后重新输入。"))
    done = Redemption.objects.filter(code=code, status=RedemptionStatus.ISSUED, expires_at__gt=now).update(
        status=RedemptionStatus.REDEEMED, store=store, redeemed_by=staff[:150], redeemed_at=now
    )
    found = Redemption.objects.select_related("store").filter(code=code).first()
    if found is None:
        raise NotFound("unknown_redemption_code", _("核销码不存在，请核对后重新输入。"))
    if not done:
        if found.status == RedemptionStatus.REDEEMED:
            when = timezone.localtime(found.redeemed_at).strftime("%Y-%m-%d %H:%M") if found.redeemed_at else ""
            where = found.store.name if found.store is not None else ""
            raise Conflict(
                "redemption_code_used", _("该核销码已于 %(when)s 在 %(where)s 核销。") % {"when": when, "where": where}
            )
        if found.status == RedemptionStatus.CANCELLED:
            raise Conflict("redemption_code_void", _("该核销码已作废。"))
        raise Conflict("redemption_code_expired", _("该核销码已过期。"))
    return Redeemed(redemption=found, prize_name=found.prize_name)
