"""Card collecting (集卡): cards won, gifted and exchanged for a set's reward.

A member's cards move only here, each movement one CardEntry (append-only, one per member, card and
source) in the same transaction as the CardHolding count it changes, so a holding is always the sum
of its entries and never below zero (a guarded UPDATE takes a card away: `count > 0`).

- Won: a card prize picks its card from the campaign's seed and the cap's serial (rewards.draw.
  card_for, fair and re-checkable); credited at once ("claim:<id>"), or when staff approve a held
  claim.
- Gifted: the card leaves the sender when the gift link is made (escrow, "gift:<id>" -1), goes to
  whoever accepts it first ("gift:<id>" +1, under the gift's row lock) or back to the sender when
  cancelled or expired ("gift-back:<id>" +1). Daily limits per set and Asia/Shanghai day: gifts made
  by a sender (cancelled ones not counted), gifts accepted by a receiver.
- Exchanged: a full set (one of each card) for the set's reward, before `exchange_ends_at`, at most
  `per_member_limit` times per member (number n of CardSetRedemption, unique) and `reward_quantity`
  times in all (a guarded UPDATE on `redeemed`). One of each card leaves ("set:<id>" -1) and the
  reward is made: cash → a Payout (paid by the worker after commit, exactly like a cash prize),
  points → a points credit, physical → a redemption code (核销码).

Locks, always in this order so two movements never wait on each other in a cycle: a gift's row,
then the member's row (FOR UPDATE; serialises one member's gifts, receipts and exchanges and their
daily limits), then their holdings in card-id order. A draw's credit takes only the holding, after
its claim row (whose member reference already holds the member's key-share lock).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Member, PointsEntry, PointsKind
from rewards import draw
from rewards.errors import RewardErrorCode as E
from rewards.models import (
    Card,
    CardEntry,
    CardGift,
    CardGiftStatus,
    CardHolding,
    CardSet,
    CardSetRedemption,
    Claim,
    ClaimStatus,
    Payout,
    Prize,
    PrizeKind,
    Redemption,
)
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPIRE_BATCH = 500


# --- reading ---------------------------------------------------------------------------------------


def cards_of(card_set_id: int) -> list[Card]:
    """The set's cards in published order (position, id): the order card_for walks."""
    return list(Card.objects.filter(card_set_id=card_set_id).order_by("position", "id"))


def share_text(weight: int, total: int) -> str:
    """A card's chance within its set as a percentage with at most two decimals, rounded half up
    (integers only): 1 of 3 → "33.33%", 1 of 4 → "25%"; "<0.01%" for a sliver."""
    if total <= 0:
        return "—"
    hundredths = (weight * 20_000 + total) // (2 * total)
    if hundredths == 0 and weight > 0:
        return "<0.01%"
    whole, rest = divmod(hundredths, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


@dataclass(frozen=True)
class CardOdds:
    card: Card
    weight: int
    share: str  # e.g. "12.5%"


def odds(card_set: CardSet, cards: list[Card] | None = None) -> list[CardOdds]:
    """Each card of the set with its chance (weight / sum of the set's weights), published order."""
    cards = cards_of(card_set.pk) if cards is None else cards
    total = sum(card.weight for card in cards)
    return [CardOdds(card=card, weight=card.weight, share=share_text(card.weight, total)) for card in cards]


@dataclass(frozen=True)
class CardCount:
    card: Card
    count: int
    share: str


@dataclass(frozen=True)
class SetExchange:
    """One exchange of a member's full set, with what it gave."""

    redemption: CardSetRedemption
    payout: Payout | None = None
    code: Redemption | None = None


@dataclass(frozen=True)
class SetProgress:
    """A member's progress in one set (the cards page)."""

    card_set: CardSet
    cards: list[CardCount]
    collected: int  # distinct cards held
    total: int  # cards in the set
    used: int  # exchanges made
    exchanges: list[SetExchange] = field(default_factory=list)
    open: bool = True  # exchange still possible by date

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.collected == self.total

    @property
    def left(self) -> int:
        return max(0, self.card_set.per_member_limit - self.used)

    @property
    def sold_out(self) -> bool:
        return self.card_set.redeemed >= self.card_set.reward_quantity

    @property
    def can_exchange(self) -> bool:
        return self.complete and self.open and self.left > 0 and not self.sold_out


def holdings(member: Member, *, now: datetime | None = None) -> list[SetProgress]:
    """Per active set: its cards with the member's counts and chances, how many distinct cards are
    held, complete or not, the member's exchanges (with their payout or code). Five queries."""
    now = now or timezone.now()
    sets = list(CardSet.objects.filter(is_active=True).order_by("exchange_ends_at", "id"))
    if not sets:
        return []
    by_set: dict[int, list[Card]] = {card_set.pk: [] for card_set in sets}
    for card in Card.objects.filter(card_set__in=sets).order_by("position", "id"):
        by_set[card.card_set_id].append(card)
    counts = dict(CardHolding.objects.filter(member=member, card__card_set__in=sets).values_list("card_id", "count"))
    done = list(
        CardSetRedemption.objects.filter(member=member, card_set__in=sets)
        .select_related("redemption")
        .order_by("card_set_id", "number")
    )
    payouts = {p.source: p for p in Payout.objects.filter(member=member, source__in=[f"set:{r.pk}" for r in done])}
    exchanges: dict[int, list[SetExchange]] = {}
    for made in done:
        exchanges.setdefault(made.card_set_id, []).append(
            SetExchange(
                redemption=made,
                payout=payouts.get(f"set:{made.pk}"),
                code=getattr(made, "redemption", None),
            )
        )
    progress = []
    for card_set in sets:
        cards = by_set[card_set.pk]
        total_weight = sum(card.weight for card in cards)
        rows = [CardCount(card, counts.get(card.pk, 0), share_text(card.weight, total_weight)) for card in cards]
        progress.append(
            SetProgress(
                card_set=card_set,
                cards=rows,
                collected=sum(1 for row in rows if row.count > 0),
                total=len(rows),
                used=len(exchanges.get(card_set.pk, [])),
                exchanges=exchanges.get(card_set.pk, []),
                open=now < card_set.exchange_ends_at,
            )
        )
    return progress


def pending_gifts(member: Member) -> list[CardGift]:
    """The member's gifts not yet accepted (their links can still be shared or cancelled)."""
    return list(
        CardGift.objects.filter(sender=member, status=CardGiftStatus.PENDING).select_related("card").order_by("-id")
    )


def gift_by_token(token: str) -> CardGift | None:
    if not token or len(token) > 43:
        return None
    return CardGift.objects.select_related("card__card_set", "sender").filter(token=token).first()


# --- moving cards: the ledger and the holding, together -------------------------------------------

_ENTRY = """
INSERT INTO {table} (member_id, card_id, delta, source, created_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (member_id, card_id, source) DO NOTHING
RETURNING id
"""

_ADD = """
INSERT INTO {table} (member_id, card_id, count) VALUES (%s, %s, 1)
ON CONFLICT (member_id, card_id) DO UPDATE SET count = {table}.count + 1
"""


def _entry(member_id: int, card_id: int, delta: int, source: str, now: datetime) -> bool:
    """Append the entry; False if this member, card and source already have one."""
    with connection.cursor() as cursor:
        cursor.execute(_ENTRY.format(table=CardEntry._meta.db_table), [member_id, card_id, delta, source[:40], now])
        return cursor.fetchone() is not None


def credit(member_id: int, card_id: int, *, source: str, now: datetime) -> bool:
    """One more of the card for the member (idempotent per source: False if already credited)."""
    with transaction.atomic(savepoint=False):
        if not _entry(member_id, card_id, 1, source, now):
            return False
        with connection.cursor() as cursor:
            cursor.execute(_ADD.format(table=CardHolding._meta.db_table), [member_id, card_id])
    return True


def _debit(member_id: int, card_id: int, *, source: str, now: datetime) -> None:
    """One of the card away from the member (inside the caller's transaction): refused if they hold
    none. The guarded UPDATE takes the holding's row lock."""
    if not CardHolding.objects.filter(member_id=member_id, card_id=card_id, count__gt=0).update(count=F("count") - 1):
        raise Conflict(E.CARD_NOT_HELD, _("您没有这张卡片。"))
    if not _entry(member_id, card_id, -1, source, now):  # a new source each time: never twice
        raise RuntimeError(f"card entry {source} for member {member_id} already made")


def _identified(member: Member) -> None:
    if member.is_erased or not member.openid:
        raise JiumaError(E.NOT_IDENTIFIED, _("请先登录。"), status=401)


def _lock_member(member_id: int) -> Member:
    """The member's row, locked (FOR UPDATE), and still identified (not erased meanwhile)."""
    locked = Member.objects.select_for_update().filter(pk=member_id).first()
    if locked is None:
        raise NotFound("member_not_found", _("会员不存在。"))
    _identified(locked)
    return locked


def _day(now: datetime) -> tuple[datetime, datetime]:
    """The Asia/Shanghai calendar day of `now`, as [start, end)."""
    local = timezone.localtime(now, SHANGHAI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


# --- won --------------------------------------------------------------------------------------------


def _pick(record: Claim, prize: Prize) -> Card:
    from rewards.services import campaigns

    if prize.card_set_id is None:
        raise Conflict(E.CARD_SET_NOT_FOUND, _("奖项未设置卡片套系。"))
    cards = cards_of(prize.card_set_id)
    if not cards:
        raise Conflict(E.CARD_SET_EMPTY, _("该套系暂无卡片，请联系品牌方。"))
    seed = campaigns.seed_of(record.campaign)
    card_id = draw.card_for(seed, record.campaign_id, record.serial, [(card.pk, card.weight) for card in cards])
    card = next(card for card in cards if card.pk == card_id)
    Claim.objects.filter(pk=record.pk).update(card=card)
    record.card = card
    return card


def on_card_prize(record: Claim, prize: Prize, *, now: datetime) -> Card:
    """A draw won a card prize (in the claim's transaction): pick the card, record it on the claim,
    and credit it unless the claim is held for review."""
    card = _pick(record, prize)
    if record.status != ClaimStatus.HELD:
        credit(record.member_id, card.pk, source=f"claim:{record.pk}", now=now)
    return card


def on_claim_approved(record: Claim, *, now: datetime) -> None:
    """Staff approved a held card claim (in review's transaction): credit the card it picked."""
    card_id = record.card_id
    if card_id is None:  # picked when drawn; a claim without one gets it now, the same way
        if record.prize is None:
            return
        card_id = _pick(record, record.prize).pk
    credit(record.member_id, card_id, source=f"claim:{record.pk}", now=now)


# --- gifted -----------------------------------------------------------------------------------------


def _open_set(card_set: CardSet, now: datetime) -> None:
    if not card_set.is_active:
        raise Conflict(E.CARD_SET_INACTIVE, _("该集卡活动已停止。"))
    if now >= card_set.exchange_ends_at:
        when = timezone.localtime(card_set.exchange_ends_at, SHANGHAI).strftime("%Y-%m-%d %H:%M")
        raise Conflict(E.CARD_EXCHANGE_CLOSED, _("该集卡活动已于 %(when)s 截止。") % {"when": when})


def gift(member: Member, card_id: int, *, now: datetime | None = None) -> CardGift:
    """Make a gift link for one of the member's cards: the card leaves them now (escrow)."""
    now = now or timezone.now()
    _identified(member)
    card = Card.objects.select_related("card_set").filter(pk=card_id).first()
    if card is None:
        raise NotFound(E.CARD_NOT_FOUND, _("卡片不存在。"))
    card_set = card.card_set
    _open_set(card_set, now)
    if card_set.gift_daily_limit == 0:
        raise Conflict(E.CARD_GIFTS_OFF, _("该套系的卡片不能赠送。"))
    with transaction.atomic():
        sender = _lock_member(member.pk)
        start, end = _day(now)
        made = (
            CardGift.objects.filter(sender=sender, card__card_set=card_set, created_at__gte=start, created_at__lt=end)
            .exclude(status=CardGiftStatus.CANCELLED)
            .count()
        )
        if made >= card_set.gift_daily_limit:
            raise Conflict(
                E.CARD_GIFT_DAILY_LIMIT,
                _("今天已赠送 %(n)d 张本套系的卡片，达到每日上限，请明天再来。") % {"n": made},
            )
        hours = max(1, card_set.gift_expiry_hours)
        made_gift = CardGift.objects.create(
            card=card,
            sender=sender,
            token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        try:
            _debit(sender.pk, card.pk, source=f"gift:{made_gift.pk}", now=now)
        except JiumaError as exc:
            raise Conflict(E.CARD_NOT_HELD, _("您没有这张卡片可以赠送。")) from exc
    made_gift.card = card
    return made_gift


def _refuse_finished(found: CardGift) -> None:
    if found.status == CardGiftStatus.ACCEPTED:
        raise Conflict(E.CARD_GIFT_TAKEN, _("这张卡片已被领取。"))
    if found.status == CardGiftStatus.CANCELLED:
        raise Conflict(E.CARD_GIFT_CANCELLED, _("赠送已被撤回。"))
    if found.status == CardGiftStatus.EXPIRED:
        raise Conflict(E.CARD_GIFT_EXPIRED, _("赠送链接已过期，卡片已退回赠送人。"))


def _give_back(found: CardGift, status: CardGiftStatus, now: datetime) -> None:
    """A pending gift (its row locked by the caller) ends unaccepted: the card back to the sender."""
    Member.objects.select_for_update().filter(pk=found.sender_id).values_list("pk", flat=True).first()
    CardGift.objects.filter(pk=found.pk, status=CardGiftStatus.PENDING).update(status=status, finished_at=now)
    credit(found.sender_id, found.card_id, source=f"gift-back:{found.pk}", now=now)
    found.status, found.finished_at = status, now


def accept(member: Member, token: str, *, now: datetime | None = None) -> CardGift:
    """The member takes the gift of `token` (the first to accept gets it)."""
    now = now or timezone.now()
    _identified(member)
    if not token or len(token) > 43:
        raise NotFound(E.CARD_GIFT_NOT_FOUND, _("赠送链接无效。"))
    expired = False
    with transaction.atomic():
        found = (
            CardGift.objects.select_for_update(of=("self",))
            .select_related("card__card_set")
            .filter(token=token)
            .first()
        )
        if found is None:
            raise NotFound(E.CARD_GIFT_NOT_FOUND, _("赠送链接无效。"))
        if found.sender_id == member.pk:
            raise JiumaError(E.CARD_GIFT_OWN, _("不能领取自己赠送的卡片。"))
        _refuse_finished(found)
        if now >= found.expires_at:
            _give_back(found, CardGiftStatus.EXPIRED, now)
            expired = True
        else:
            receiver = _lock_member(member.pk)
            card_set = found.card.card_set
            start, end = _day(now)
            received = CardGift.objects.filter(
                receiver=receiver,
                status=CardGiftStatus.ACCEPTED,
                card__card_set=card_set,
                finished_at__gte=start,
                finished_at__lt=end,
            ).count()
            if received >= card_set.receive_daily_limit:
                raise Conflict(
                    E.CARD_RECEIVE_DAILY_LIMIT,
                    _("今天已领取 %(n)d 张本套系的卡片，达到每日上限，请明天再来。") % {"n": received},
                )
            CardGift.objects.filter(pk=found.pk).update(
                status=CardGiftStatus.ACCEPTED, receiver=receiver, finished_at=now
            )
            credit(receiver.pk, found.card_id, source=f"gift:{found.pk}", now=now)
            found.status, found.receiver, found.finished_at = CardGiftStatus.ACCEPTED, receiver, now
    if expired:  # the card went back to the sender (committed); the receiver is told why
        raise Conflict(E.CARD_GIFT_EXPIRED, _("赠送链接已过期，卡片已退回赠送人。"))
    return found


def cancel(member: Member, gift_id: int, *, now: datetime | None = None) -> CardGift:
    """The sender takes back a gift nobody has accepted: the card returns to them."""
    now = now or timezone.now()
    with transaction.atomic():
        found = CardGift.objects.select_for_update().filter(pk=gift_id, sender_id=member.pk).first()
        if found is None:
            raise NotFound(E.CARD_GIFT_NOT_FOUND, _("没有找到这次赠送。"))
        _refuse_finished(found)
        _give_back(found, CardGiftStatus.CANCELLED, now)
    return found


def expire_due(*, now: datetime | None = None) -> int:
    """Pending gifts past their time end (the beat task): each card back to its sender. Returns how
    many expired. One transaction per gift; a gift being accepted or cancelled right now is skipped
    (its own transaction decides it)."""
    now = now or timezone.now()
    expired = 0
    while True:
        due = list(
            CardGift.objects.filter(status=CardGiftStatus.PENDING, expires_at__lte=now)
            .order_by("expires_at", "id")
            .values_list("pk", flat=True)[:EXPIRE_BATCH]
        )
        progressed = 0
        for gift_id in due:
            with transaction.atomic():
                found = (
                    CardGift.objects.select_for_update(skip_locked=True)
                    .filter(pk=gift_id, status=CardGiftStatus.PENDING, expires_at__lte=now)
                    .first()
                )
                if found is None:
                    continue
                _give_back(found, CardGiftStatus.EXPIRED, now)
            progressed += 1
        expired += progressed
        if len(due) < EXPIRE_BATCH or not progressed:
            return expired


# --- exchanged --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchanged:
    redemption: CardSetRedemption
    card_set: CardSet
    payout: Payout | None = None
    points_entry: PointsEntry | None = None
    code: Redemption | None = None


def exchange(member: Member, card_set_id: int, *, now: datetime | None = None) -> Exchanged:
    """One of each card of the set for the set's reward (see the module doc)."""
    now = now or timezone.now()
    _identified(member)
    card_set = CardSet.objects.filter(pk=card_set_id).first()
    if card_set is None:
        raise NotFound(E.CARD_SET_NOT_FOUND, _("集卡套系不存在。"))
    _open_set(card_set, now)
    card_ids = sorted(Card.objects.filter(card_set=card_set).values_list("pk", flat=True))
    if not card_ids:
        raise Conflict(E.CARD_SET_EMPTY, _("该套系暂无卡片，请联系品牌方。"))
    try:
        with transaction.atomic():
            owner = _lock_member(member.pk)
            held = dict(
                CardHolding.objects.select_for_update()
                .filter(member=owner, card_id__in=card_ids)
                .order_by("card_id")
                .values_list("card_id", "count")
            )
            missing = sum(1 for card_id in card_ids if held.get(card_id, 0) < 1)
            if missing:
                raise Conflict(E.CARD_SET_INCOMPLETE, _("还差 %(n)d 张卡片才能集齐，暂不能兑换。") % {"n": missing})
            used = CardSetRedemption.objects.filter(card_set=card_set, member=owner).count()
            if used >= card_set.per_member_limit:
                raise Conflict(E.CARD_EXCHANGE_LIMIT, _("您已兑换 %(n)d 次，达到本套系的兑换上限。") % {"n": used})
            if not CardSet.objects.filter(pk=card_set.pk, redeemed__lt=F("reward_quantity")).update(
                redeemed=F("redeemed") + 1
            ):
                raise Conflict(E.CARD_SET_SOLD_OUT, _("本套系的集齐奖励已兑完。"))
            made = CardSetRedemption.objects.create(card_set=card_set, member=owner, number=used + 1, created_at=now)
            source = f"set:{made.pk}"
            for card_id in card_ids:
                _debit(owner.pk, card_id, source=source, now=now)
            return _reward(owner, card_set, made, now)
    except IntegrityError as exc:  # the (set, member, number) backstop: another exchange won the race
        raise Conflict(E.CARD_EXCHANGE_BUSY, _("兑换正在处理中，请勿重复提交。")) from exc


def _reward(owner: Member, card_set: CardSet, made: CardSetRedemption, now: datetime) -> Exchanged:
    """The set's reward for one exchange (in the exchange's transaction)."""
    from commerce.services import points
    from rewards.services import payouts, redemptions

    source = f"set:{made.pk}"
    if card_set.reward_kind == PrizeKind.CASH:
        payout = payouts.create(
            source, member=owner, amount_fen=card_set.reward_amount_fen, remark=card_set.name, now=now
        )
        return Exchanged(redemption=made, card_set=card_set, payout=payout)
    if card_set.reward_kind == PrizeKind.POINTS:
        entry = points.credit(
            owner.pk,
            card_set.reward_points,
            kind=PointsKind.CARD,
            source=source,
            note=f"{card_set.name} · {card_set.reward_name}",
            now=now,
        )
        return Exchanged(redemption=made, card_set=card_set, points_entry=entry)
    code = redemptions.issue_for_set(made, card_set, now=now)
    return Exchanged(redemption=made, card_set=card_set, code=code)
