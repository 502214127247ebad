"""Card collecting (集卡): the card a prize gives is fair and re-derivable, cards move only through
the ledger (never below zero, the ledger summing to the holdings), gifts go to one receiver within
the daily limits and come back when cancelled or expired, a full set is exchanged exactly once and
never more sets than the reward quantity, whatever the concurrency; the admin keeps published odds."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import timezone

from commerce.models import Member, PointsEntry, PointsKind
from rewards import draw
from rewards.models import (
    BlockedItem,
    Campaign,
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
    PayoutStatus,
    Prize,
    Redemption,
    RiskPolicy,
)
from rewards.services import campaigns, cards, claims, redemptions
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.brand.models import AuditEntry
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.rewards.conftest import member, remove_campaign, running_campaign
from tests.support.threads import run_concurrently

SHANGHAI = ZoneInfo("Asia/Shanghai")
many_connections = pytest.mark.xdist_group("many_connections")


# --- helpers ----------------------------------------------------------------------------------------


def make_set(
    names: tuple[str, ...] = ("福", "禄", "寿"),
    weights: tuple[int, ...] | None = None,
    *,
    reward_kind: str = "cash",
    **fields: Any,
) -> CardSet:
    values: dict[str, Any] = {
        "name": "福禄寿",
        "reward_name": "集齐红包",
        "reward_kind": reward_kind,
        "reward_quantity": 100,
        "exchange_ends_at": timezone.now() + timedelta(days=60),
    }
    if reward_kind == "cash":
        values["reward_amount_fen"] = 8_800
    elif reward_kind == "points":
        values["reward_points"] = 500
    else:
        values["reward_value_fen"] = 29_900
    values.update(fields)
    card_set = CardSet.objects.create(**values)
    for index, name in enumerate(names):
        Card.objects.create(
            card_set=card_set, name=name, weight=(weights or (100,) * len(names))[index], position=index
        )
    return card_set


def card_prize(card_set: CardSet, *, odds_ppm: int = 1_000_000, quantity: int = 1_000) -> PrizeSpec:
    return PrizeSpec(name="集卡", kind="card", odds_ppm=odds_ppm, quantity=quantity, card_set_id=card_set.pk)


def set_cards(card_set: CardSet) -> list[Card]:
    return list(card_set.cards.order_by("position", "id"))


def give(who: Member, *held: Card) -> None:
    """Credit cards as draws would (one source each)."""
    for card in held:
        n = CardEntry.objects.filter(member=who).count()
        cards.credit(who.pk, card.pk, source=f"test:{n}", now=timezone.now())


def count(who: Member, card: Card) -> int:
    return CardHolding.objects.filter(member=who, card=card).values_list("count", flat=True).first() or 0


def ledger_matches_holdings() -> None:
    """Invariant: every holding is the sum of its entries, and none is negative."""
    sums = {
        (row["member_id"], row["card_id"]): row["total"]
        for row in CardEntry.objects.values("member_id", "card_id").annotate(total=Sum("delta"))
    }
    holdings = {(h.member_id, h.card_id): h.count for h in CardHolding.objects.all()}
    assert all(value >= 0 for value in holdings.values())
    assert {key: value for key, value in sums.items() if value} == {k: v for k, v in holdings.items() if v}


def no_velocity_rules() -> None:
    RiskPolicy.objects.create(member_claims_per_hour=0, device_claims_per_hour=0, ip_claims_per_hour=0)


# --- the draw: fair, auditable ------------------------------------------------------------------------


def _by_hand(seed: bytes, campaign_id: int, serial: int, deck: list[tuple[int, int]]) -> int:
    """card_for as its documentation states it, written out again."""
    digest = hmac.new(seed, f"jiuma-card|{campaign_id}|{serial}".encode(), hashlib.sha256).digest()
    point = int.from_bytes(digest[:8], "big") * sum(w for _c, w in deck) // 2**64
    for card_id, weight in deck:
        if point < weight:
            return card_id
        point -= weight
    raise AssertionError


def test_the_card_a_prize_gave_is_rederived_from_the_revealed_seed(in_alpha: Brand) -> None:
    no_velocity_rules()
    card_set = make_set(("一", "二", "三", "四"), (1, 2, 7, 40))
    campaign = running_campaign([card_prize(card_set)])
    someone = member()
    results = [claims.claim(someone, ClaimContext(serial=900 + n)) for n in range(40)]
    assert all(r.card is not None and r.claim.card_id == r.card.pk for r in results)
    ended = campaigns.end(campaign, now=campaign.ends_at)
    seed = bytes.fromhex(ended.seed_revealed)
    assert hashlib.sha256(seed).hexdigest() == ended.seed_commitment
    deck = [(card.pk, card.weight) for card in set_cards(card_set)]
    for claim in Claim.objects.filter(campaign=campaign):
        assert claim.card_id == _by_hand(seed, campaign.pk, claim.serial, deck)
        assert claim.card_id == draw.card_for(seed, campaign.pk, claim.serial, deck)
    rows = campaigns.audit_rows(ended)
    assert len(rows) == 40
    assert all(row["card"] == row["recomputed_card"] for row in rows)


def test_card_frequencies_follow_the_weights() -> None:
    """40,000 picks from a fixed seed (deterministic: it cannot flake) against weights 5:10:25:60;
    chi-square with 3 degrees of freedom below 16.27 (p = 0.001), each count within 5 sigma."""
    seed = bytes(range(32))
    deck = [(1, 5), (2, 10), (3, 25), (4, 60)]
    n = 40_000
    seen = Counter(draw.card_for(seed, 7, serial, deck) for serial in range(1, n + 1))
    total = sum(weight for _card, weight in deck)
    chi2 = 0.0
    for card_id, weight in deck:
        expected = n * weight / total
        chi2 += (seen[card_id] - expected) ** 2 / expected
        sigma = (n * (weight / total) * (1 - weight / total)) ** 0.5
        assert abs(seen[card_id] - expected) < 5 * sigma, (card_id, seen[card_id], expected)
    assert chi2 < 16.27, chi2


def test_card_for_uses_integer_weights_and_refuses_an_empty_deck() -> None:
    seed = b"k" * 32
    huge = [(1, 2**40), (2, 1)]
    assert {draw.card_for(seed, 1, serial, huge) for serial in range(200)} == {1}
    assert draw.card_for(seed, 1, 1, [(9, 1)]) == 9
    for bad in ([], [(1, 0)]):
        with pytest.raises(ValueError, match="weight"):
            draw.card_for(seed, 1, 1, bad)


def test_the_published_chances_are_weight_over_the_sum() -> None:
    assert cards.share_text(1, 3) == "33.33%"
    assert cards.share_text(1, 4) == "25%"
    assert cards.share_text(1, 8) == "12.5%"
    assert cards.share_text(2, 3) == "66.67%"
    assert cards.share_text(1, 1_000_000) == "<0.01%"


# --- won ----------------------------------------------------------------------------------------------


def test_a_card_prize_puts_the_picked_card_in_the_members_holdings(in_alpha: Brand) -> None:
    card_set = make_set()
    running_campaign([card_prize(card_set)])
    someone = member()
    result = claims.claim(someone, ClaimContext(serial=1))
    assert result.card is not None
    assert Claim.objects.get(pk=result.claim.pk).card_id == result.card.pk
    assert count(someone, result.card) == 1
    (entry,) = CardEntry.objects.filter(member=someone)
    assert (entry.delta, entry.source) == (1, f"claim:{result.claim.pk}")
    assert Prize.objects.get(card_set=card_set).awarded == 1


def test_a_held_card_claim_shows_its_card_and_credits_it_only_when_approved(in_alpha: Brand) -> None:
    card_set = make_set()
    running_campaign([card_prize(card_set)])
    RiskPolicy.objects.create()
    BlockedItem.objects.create(kind="openid", value="o-farmer", reason="批量领取")
    farmer = member("o-farmer")
    held = claims.claim(farmer, ClaimContext(serial=1))
    assert held.claim.status == ClaimStatus.HELD
    assert held.card is not None
    assert not CardHolding.objects.filter(member=farmer).exists()
    claims.review(held.claim, approve=True, actor="owner")
    assert count(farmer, held.card) == 1
    rejected = claims.claim(farmer, ClaimContext(serial=2))
    claims.review(rejected.claim, approve=False, actor="owner")
    assert CardEntry.objects.filter(member=farmer).count() == 1
    ledger_matches_holdings()


def test_crediting_is_idempotent_per_source(in_alpha: Brand) -> None:
    (card, *_rest) = set_cards(make_set())
    someone = member()
    now = timezone.now()
    assert cards.credit(someone.pk, card.pk, source="claim:1", now=now)
    assert not cards.credit(someone.pk, card.pk, source="claim:1", now=now)
    assert count(someone, card) == 1


def test_a_card_prize_needs_an_active_set_with_cards(in_alpha: Brand) -> None:
    empty = CardSet.objects.create(
        name="空", reward_name="x", reward_kind="points", reward_points=1, reward_quantity=1,
        exchange_ends_at=timezone.now() + timedelta(days=9),
    )  # fmt: skip
    stopped = make_set(is_active=False)
    for spec, message in (
        (PrizeSpec(name="集卡", kind="card", odds_ppm=10, quantity=1), "选择卡片套系"),
        (card_prize(empty), "还没有卡片"),
        (card_prize(stopped), "已停用"),
        (PrizeSpec(name="集卡", kind="card", odds_ppm=10, quantity=1, card_set_id=999_999), "不存在"),
    ):
        with pytest.raises(JiumaError) as refused:
            campaigns.check_prizes([spec])
        assert refused.value.code == "invalid_prize"
        assert message in refused.value.message
    campaigns.check_prizes([card_prize(make_set())])


# --- gifted -------------------------------------------------------------------------------------------


def test_a_gift_leaves_the_sender_at_once_and_goes_to_whoever_accepts_it(in_alpha: Brand) -> None:
    fu, *_rest = set_cards(make_set())
    sender, receiver = member("o-s"), member("o-r")
    give(sender, fu)
    made = cards.gift(sender, fu.pk)
    assert len(made.token) == 43
    assert count(sender, fu) == 0
    assert CardEntry.objects.get(member=sender, source=f"gift:{made.pk}").delta == -1
    taken = cards.accept(receiver, made.token)
    assert (taken.status, taken.receiver_id) == (CardGiftStatus.ACCEPTED, receiver.pk)
    assert count(receiver, fu) == 1
    assert CardEntry.objects.get(member=receiver, source=f"gift:{made.pk}").delta == 1
    with pytest.raises(JiumaError) as again:
        cards.accept(member("o-late"), made.token)
    assert (again.value.code, again.value.status_code) == ("card_gift_taken", 409)
    ledger_matches_holdings()


def test_gifts_are_refused_with_a_reason(in_alpha: Brand) -> None:
    fu, lu, _shou = set_cards(make_set())
    sender = member("o-s")
    give(sender, fu)

    def refused(call: Any) -> JiumaError:
        with pytest.raises(JiumaError) as caught:
            call()
        return caught.value

    assert refused(lambda: cards.gift(sender, lu.pk)).code == "card_not_held"
    assert refused(lambda: cards.gift(sender, 999_999)).status_code == 404
    made = cards.gift(sender, fu.pk)
    assert refused(lambda: cards.gift(sender, fu.pk)).code == "card_not_held"  # in escrow now
    assert refused(lambda: cards.accept(sender, made.token)).code == "card_gift_own"
    assert refused(lambda: cards.accept(member("o-x"), "no-such-token")).status_code == 404
    gone = Member.objects.create(openid=None, erased_at=timezone.now())
    assert refused(lambda: cards.accept(gone, made.token)).status_code == 401
    anonymous = Member.objects.create(openid=None)
    assert refused(lambda: cards.gift(anonymous, fu.pk)).status_code == 401
    assert refused(lambda: cards.exchange(anonymous, fu.card_set_id)).status_code == 401
    assert CardGift.objects.get(pk=made.pk).status == CardGiftStatus.PENDING
    assert CardGift.objects.count() == 1  # refused gifts leave nothing behind
    ledger_matches_holdings()


def test_daily_gift_and_receive_limits_per_shanghai_day(in_alpha: Brand) -> None:
    card_set = make_set(gift_daily_limit=2, receive_daily_limit=1)
    fu, lu, shou = set_cards(card_set)
    sender, first, second = member("o-s"), member("o-a"), member("o-b")
    give(sender, fu, lu, shou, shou)
    # 23:30 in Shanghai, then 00:30 the next day (different UTC dates are irrelevant).
    late = datetime(2030, 3, 1, 23, 30, tzinfo=SHANGHAI)
    CardSet.objects.filter(pk=card_set.pk).update(exchange_ends_at=late + timedelta(days=30))
    one = cards.gift(sender, fu.pk, now=late)
    cancelled = cards.gift(sender, lu.pk, now=late)
    cards.cancel(sender, cancelled.pk, now=late)  # a cancelled gift does not count
    two = cards.gift(sender, lu.pk, now=late)
    with pytest.raises(JiumaError) as capped:
        cards.gift(sender, shou.pk, now=late)
    assert capped.value.code == "card_gift_daily_limit"
    assert count(sender, shou) == 2
    three = cards.gift(sender, shou.pk, now=late + timedelta(hours=1))  # a new day
    cards.accept(first, one.token, now=late)
    with pytest.raises(JiumaError) as full:
        cards.accept(first, two.token, now=late)
    assert full.value.code == "card_receive_daily_limit"
    assert CardGift.objects.get(pk=two.pk).status == CardGiftStatus.PENDING  # still for someone else
    cards.accept(first, two.token, now=late + timedelta(hours=1))
    cards.accept(second, three.token, now=late + timedelta(hours=1))
    assert (count(first, fu), count(first, lu), count(second, shou)) == (1, 1, 1)
    ledger_matches_holdings()


def test_a_set_that_allows_no_gifts_refuses_them(in_alpha: Brand) -> None:
    fu, *_rest = set_cards(make_set(gift_daily_limit=0))
    sender = member()
    give(sender, fu)
    with pytest.raises(JiumaError) as off:
        cards.gift(sender, fu.pk)
    assert off.value.code == "card_gifts_disabled"
    assert count(sender, fu) == 1


def test_a_cancelled_gift_comes_back_and_only_its_sender_may_cancel(in_alpha: Brand) -> None:
    fu, *_rest = set_cards(make_set())
    sender, other = member("o-s"), member("o-o")
    give(sender, fu)
    made = cards.gift(sender, fu.pk)
    with pytest.raises(JiumaError) as not_theirs:
        cards.cancel(other, made.pk)
    assert not_theirs.value.status_code == 404
    cards.cancel(sender, made.pk)
    assert count(sender, fu) == 1
    assert CardEntry.objects.get(member=sender, source=f"gift-back:{made.pk}").delta == 1
    with pytest.raises(JiumaError) as again:
        cards.cancel(sender, made.pk)
    assert again.value.code == "card_gift_cancelled"
    with pytest.raises(JiumaError) as late:
        cards.accept(other, made.token)
    assert late.value.code == "card_gift_cancelled"
    accepted = cards.gift(sender, fu.pk)
    cards.accept(other, accepted.token)
    with pytest.raises(JiumaError) as taken:
        cards.cancel(sender, accepted.pk)
    assert taken.value.code == "card_gift_taken"
    ledger_matches_holdings()


def test_an_expired_gift_goes_back_to_its_sender(in_alpha: Brand) -> None:
    fu, lu, _shou = set_cards(make_set(gift_expiry_hours=24))
    sender, receiver = member("o-s"), member("o-r")
    give(sender, fu, lu)
    now = timezone.now()
    swept = cards.gift(sender, fu.pk, now=now)
    opened_late = cards.gift(sender, lu.pk, now=now)
    assert cards.expire_due(now=now + timedelta(hours=23)) == 0
    # A receiver opening a link after its time: refused, and the card goes back right then.
    with pytest.raises(JiumaError) as expired:
        cards.accept(receiver, opened_late.token, now=now + timedelta(hours=25))
    assert expired.value.code == "card_gift_expired"
    assert count(sender, lu) == 1
    # The hourly task returns the rest.
    assert cards.expire_due(now=now + timedelta(hours=25)) == 1
    assert CardGift.objects.get(pk=swept.pk).status == CardGiftStatus.EXPIRED
    assert count(sender, fu) == 1
    assert cards.expire_due(now=now + timedelta(hours=26)) == 0
    assert not CardHolding.objects.filter(member=receiver, count__gt=0).exists()
    ledger_matches_holdings()


def test_the_beat_schedule_expires_gifts_hourly() -> None:
    from django.conf import settings

    from rewards import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["rewards.expire_card_gifts"]
    assert entry == {"task": "rewards.expire_card_gifts", "schedule": 3600.0}
    assert tasks.expire_card_gifts.name == "rewards.expire_card_gifts"


# --- exchanged ----------------------------------------------------------------------------------------


def test_a_full_set_becomes_a_red_packet_once(in_alpha: Brand, django_capture_on_commit_callbacks: Any) -> None:
    card_set = make_set()
    someone = member()
    give(someone, *set_cards(card_set))
    give(someone, set_cards(card_set)[0])  # a spare stays
    with django_capture_on_commit_callbacks() as callbacks:
        done = cards.exchange(someone, card_set.pk)
    assert len(callbacks) == 1  # the payout goes to the worker after commit
    assert done.redemption.number == 1
    payout = done.payout
    assert payout is not None
    assert (payout.source, payout.amount_fen, payout.status) == (f"set:{done.redemption.pk}", 8_800, "pending")
    assert (payout.campaign_id, payout.claim_id, payout.openid) == (None, None, someone.openid)
    assert payout.out_bill_no == f"JM{in_alpha.tenant.number:05d}S{done.redemption.pk:015d}"
    assert payout.remark == card_set.name
    assert [count(someone, card) for card in set_cards(card_set)] == [1, 0, 0]
    assert CardEntry.objects.filter(source=f"set:{done.redemption.pk}", delta=-1).count() == 3
    card_set.refresh_from_db()
    assert card_set.redeemed == 1
    give(someone, *set_cards(card_set)[1:])
    with pytest.raises(JiumaError) as limit:
        cards.exchange(someone, card_set.pk)
    assert limit.value.code == "card_exchange_limit_reached"
    ledger_matches_holdings()


def test_a_full_set_becomes_points_or_a_redemption_code(in_alpha: Brand) -> None:
    coins = make_set(("甲", "乙"), reward_kind="points", per_member_limit=2)
    gift_box = make_set(("丙", "丁"), reward_kind="physical", name="好礼", reward_name="定制酒杯")
    someone = member()
    for _time in range(2):
        give(someone, *set_cards(coins))
        cards.exchange(someone, coins.pk)
    someone.refresh_from_db()
    assert someone.points_balance == 1_000
    assert list(PointsEntry.objects.filter(member=someone).values_list("kind", flat=True)) == [PointsKind.CARD] * 2
    assert list(CardSetRedemption.objects.filter(card_set=coins).values_list("number", flat=True)) == [2, 1]
    give(someone, *set_cards(gift_box))
    done = cards.exchange(someone, gift_box.pk)
    code = done.code
    assert code is not None
    stored = Redemption.objects.get(pk=code.pk)
    assert (stored.set_redemption_id, stored.prize_id, stored.claim_id) == (done.redemption.pk, None, None)
    assert stored.prize_name == "定制酒杯"
    assert stored.expires_at > gift_box.exchange_ends_at
    from commerce.services import channel

    dealer = channel.create_dealer(code="GY01", name="贵阳经销商", areas=["520100"])
    store = channel.create_store(code="S001", name="南明门店", dealer_id=dealer.pk, region_code="520102")
    assert redemptions.redeem(code.code, store=store, staff="店员").prize_name == "定制酒杯"


def test_exchanges_are_refused_with_a_reason(in_alpha: Brand) -> None:
    card_set = make_set(reward_quantity=1)
    first, second = member("o-1"), member("o-2")
    with pytest.raises(JiumaError) as incomplete:
        cards.exchange(first, card_set.pk)
    assert (incomplete.value.code, incomplete.value.status_code) == ("card_set_incomplete", 409)
    give(first, *set_cards(card_set))
    give(second, *set_cards(card_set))
    cards.exchange(first, card_set.pk)
    with pytest.raises(JiumaError) as sold_out:
        cards.exchange(second, card_set.pk)
    assert sold_out.value.code == "card_set_sold_out"
    assert [count(second, card) for card in set_cards(card_set)] == [1, 1, 1]  # nothing taken
    with pytest.raises(JiumaError) as closed:
        cards.exchange(second, card_set.pk, now=card_set.exchange_ends_at)
    assert closed.value.code == "card_exchange_closed"
    CardSet.objects.filter(pk=card_set.pk).update(is_active=False)
    with pytest.raises(JiumaError) as stopped:
        cards.exchange(second, card_set.pk)
    assert stopped.value.code == "card_set_inactive"
    with pytest.raises(JiumaError) as unknown:
        cards.exchange(second, 999_999)
    assert unknown.value.status_code == 404
    assert CardSetRedemption.objects.count() == 1
    ledger_matches_holdings()


def test_holdings_give_each_active_sets_progress(in_alpha: Brand, django_assert_max_num_queries: Any) -> None:
    card_set = make_set(("一", "二", "三"), (1, 1, 2))
    make_set(("x",), name="停用", is_active=False)
    someone = member()
    one, two, three = set_cards(card_set)
    give(someone, one, one, two)
    with django_assert_max_num_queries(5):
        (row,) = cards.holdings(someone)
    assert [(c.card.name, c.count, c.share) for c in row.cards] == [
        ("一", 2, "25%"),
        ("二", 1, "25%"),
        ("三", 0, "50%"),
    ]
    assert (row.collected, row.total, row.complete, row.can_exchange) == (2, 3, False, False)
    give(someone, three)
    cards.exchange(someone, card_set.pk)
    (row,) = cards.holdings(someone)
    assert (row.used, row.left, row.complete, len(row.exchanges)) == (1, 0, False, 1)
    assert row.exchanges[0].payout is not None


# --- concurrency: committed in separate connections, cleaned up after -----------------------------


def _committed(alpha: Brand, make: Any) -> Any:
    ((made,),) = [run_concurrently([make], tenant=alpha.tenant)]
    return made


@many_connections
def test_eight_exchanges_of_one_full_set_at_once_make_one(alpha: Brand) -> None:
    def setup() -> tuple[int, int]:
        card_set = make_set()
        owner = member("o-race-exchange")
        give(owner, *set_cards(card_set))
        return card_set.pk, owner.pk

    set_id, owner_id = _committed(alpha, setup)
    try:
        outcomes = run_concurrently(
            [lambda: cards.exchange(Member.objects.get(pk=owner_id), set_id) for _ in range(8)], tenant=alpha.tenant
        )
        done = [o for o in outcomes if isinstance(o, cards.Exchanged)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(done) == 1, outcomes
        assert len(refused) == 7, outcomes
        assert {o.code for o in refused} <= {"card_set_incomplete", "card_exchange_limit_reached"}

        def totals() -> dict[str, Any]:
            ledger_matches_holdings()
            return {
                "redemptions": CardSetRedemption.objects.filter(card_set_id=set_id).count(),
                "redeemed": CardSet.objects.get(pk=set_id).redeemed,
                "held": CardHolding.objects.filter(member_id=owner_id).aggregate(s=Sum("count"))["s"],
                "payouts": Payout.objects.filter(member_id=owner_id).count(),
            }

        assert _committed(alpha, totals) == {"redemptions": 1, "redeemed": 1, "held": 0, "payouts": 1}
    finally:
        run_concurrently([lambda: remove_campaign(None, [owner_id], [set_id])], tenant=alpha.tenant)


@many_connections
def test_many_members_racing_never_exchange_more_sets_than_the_reward_quantity(alpha: Brand) -> None:
    def setup() -> tuple[int, list[int]]:
        card_set = make_set(("甲", "乙"), reward_quantity=5)
        ids = []
        for n in range(12):
            who = member(f"o-race-set-{n}")
            give(who, *set_cards(card_set))
            ids.append(who.pk)
        return card_set.pk, ids

    set_id, member_ids = _committed(alpha, setup)
    try:
        outcomes = run_concurrently(
            [lambda m=m: cards.exchange(Member.objects.get(pk=m), set_id) for m in member_ids], tenant=alpha.tenant
        )
        done = [o for o in outcomes if isinstance(o, cards.Exchanged)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(done) == 5, outcomes
        assert {o.code for o in refused} == {"card_set_sold_out"}
        assert len(refused) == 7

        def totals() -> tuple[int, int, int, int]:
            ledger_matches_holdings()
            return (
                CardSet.objects.get(pk=set_id).redeemed,
                CardSetRedemption.objects.filter(card_set_id=set_id).count(),
                Payout.objects.filter(member_id__in=member_ids, status=PayoutStatus.PENDING).count(),
                CardHolding.objects.filter(member_id__in=member_ids).aggregate(s=Sum("count"))["s"],
            )

        assert _committed(alpha, totals) == (5, 5, 5, 2 * 7)
    finally:
        run_concurrently([lambda: remove_campaign(None, member_ids, [set_id])], tenant=alpha.tenant)


@many_connections
def test_a_gift_opened_by_eight_receivers_at_once_goes_to_one(alpha: Brand) -> None:
    def setup() -> tuple[int, int, str, list[int]]:
        card_set = make_set()
        sender = member("o-race-sender")
        give(sender, set_cards(card_set)[0])
        made = cards.gift(sender, set_cards(card_set)[0].pk)
        return card_set.pk, sender.pk, made.token, [member(f"o-race-recv-{n}").pk for n in range(8)]

    set_id, sender_id, token, receiver_ids = _committed(alpha, setup)
    try:
        outcomes = run_concurrently(
            [lambda r=r: cards.accept(Member.objects.get(pk=r), token) for r in receiver_ids], tenant=alpha.tenant
        )
        won = [o for o in outcomes if isinstance(o, CardGift)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(won) == 1, outcomes
        assert {o.code for o in refused} == {"card_gift_taken"}

        def totals() -> tuple[int, int]:
            ledger_matches_holdings()
            held = CardHolding.objects.filter(member_id__in=receiver_ids).aggregate(s=Sum("count"))["s"]
            return held, CardHolding.objects.get(member_id=sender_id).count

        assert _committed(alpha, totals) == (1, 0)
    finally:
        run_concurrently([lambda: remove_campaign(None, [sender_id, *receiver_ids], [set_id])], tenant=alpha.tenant)


@many_connections
def test_one_card_gifted_eight_times_at_once_makes_one_gift(alpha: Brand) -> None:
    def setup() -> tuple[int, int, int]:
        card_set = make_set(gift_daily_limit=20)
        sender = member("o-race-giver")
        give(sender, set_cards(card_set)[0])
        return card_set.pk, sender.pk, set_cards(card_set)[0].pk

    set_id, sender_id, card_id = _committed(alpha, setup)
    try:
        outcomes = run_concurrently(
            [lambda: cards.gift(Member.objects.get(pk=sender_id), card_id) for _ in range(8)], tenant=alpha.tenant
        )
        assert len([o for o in outcomes if isinstance(o, CardGift)]) == 1, outcomes
        assert {o.code for o in outcomes if isinstance(o, JiumaError)} == {"card_not_held"}

        def totals() -> tuple[int, int]:
            ledger_matches_holdings()
            return CardGift.objects.filter(sender_id=sender_id).count(), CardHolding.objects.get(
                member_id=sender_id
            ).count

        assert _committed(alpha, totals) == (1, 0)
    finally:
        run_concurrently([lambda: remove_campaign(None, [sender_id], [set_id])], tenant=alpha.tenant)


# --- the admin ----------------------------------------------------------------------------------------

ADMIN = "/admin/rewards"


def _set_form(cards_rows: list[dict[str, str]], *, existing: int = 0, **fields: str) -> dict[str, str]:
    data = {
        "name": "十二生肖",
        "description": "",
        "is_active": "on",
        "reward_name": "生肖红包",
        "reward_kind": "cash",
        "reward_amount_yuan": "88.80",
        "reward_points": "",
        "reward_value_yuan": "",
        "reward_quantity": "100",
        "per_member_limit": "1",
        "exchange_ends_at_0": "2031-01-01",
        "exchange_ends_at_1": "00:00:00",
        "gift_daily_limit": "3",
        "receive_daily_limit": "3",
        "gift_expiry_hours": "48",
        "cards-TOTAL_FORMS": str(len(cards_rows)),
        "cards-INITIAL_FORMS": str(existing),
        "cards-MIN_NUM_FORMS": "0",
        "cards-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    for index, row in enumerate(cards_rows):
        for key, value in row.items():
            data[f"cards-{index}-{key}"] = value
    return data


def test_the_admin_makes_a_set_in_yuan_with_weighted_cards(alpha: Brand) -> None:
    client = alpha.client("owner")
    rows = [{"name": "鼠", "weight": "1", "position": "0"}, {"name": "牛", "weight": "3", "position": "1"}]
    response = client.post(f"{ADMIN}/cardset/add/", _set_form(rows))
    assert response.status_code == 302, response.content.decode()[:3000]
    with tenant_context_of(alpha):
        card_set = CardSet.objects.get(name="十二生肖")
        assert (card_set.reward_amount_fen, card_set.reward_points, card_set.reward_value_fen) == (8_880, 0, 0)
        assert [(c.name, c.weight) for c in set_cards(card_set)] == [("鼠", 1), ("牛", 3)]
        assert AuditEntry.objects.filter(object_type="rewards.cardset", object_id=str(card_set.pk)).exists()
    page = client.get(f"{ADMIN}/cardset/{card_set.pk}/change/").content.decode()
    assert "25%" in page
    assert "75%" in page
    bad = client.post(f"{ADMIN}/cardset/add/", _set_form(rows, reward_amount_yuan="0.05", name="太少"))
    assert bad.status_code == 200
    assert "至少 0.10 元" in bad.content.decode()
    none = client.post(f"{ADMIN}/cardset/add/", _set_form([], name="无卡"))
    assert "请至少添加一张卡片" in none.content.decode()


def test_published_odds_lock_the_sets_cards_in_the_admin(alpha: Brand) -> None:
    with tenant_context_of(alpha):
        card_set = make_set(("鼠", "牛"), (1, 3))
        mouse, ox = set_cards(card_set)
        running_campaign([card_prize(card_set)], name="生肖活动")
    client = alpha.client("owner")
    page = client.get(f"{ADMIN}/cardset/{card_set.pk}/change/").content.decode()
    assert "生肖活动" in page  # the reason is shown
    assert "不能再修改" in page
    assert 'name="cards-0-weight"' not in page
    rows = [
        {"id": str(mouse.pk), "card_set": str(card_set.pk), "name": "鼠", "weight": "50", "position": "0"},
        {"id": str(ox.pk), "card_set": str(card_set.pk), "name": "牛", "weight": "3", "position": "1", "DELETE": "on"},
    ]
    posted = client.post(
        f"{ADMIN}/cardset/{card_set.pk}/change/",
        _set_form(rows, existing=2, name="改名", reward_amount_yuan="1", exchange_ends_at_0="2099-01-01"),
    )
    assert posted.status_code == 302, posted.content.decode()[:3000]
    with tenant_context_of(alpha):
        assert [(c.name, c.weight) for c in set_cards(card_set)] == [("鼠", 1), ("牛", 3)]
        card_set.refresh_from_db()
        assert card_set.name == "福禄寿"  # fixed with the odds, like the reward
        assert card_set.reward_amount_fen == 8_800
        assert timezone.localtime(card_set.exchange_ends_at, SHANGHAI).year == 2099  # later is allowed
    earlier = client.post(f"{ADMIN}/cardset/{card_set.pk}/change/", _set_form([], exchange_ends_at_0="2000-01-01"))
    assert "只能延后" in earlier.content.decode()


def tenant_context_of(brand: Brand) -> Any:
    from django_tenants.utils import tenant_context

    return tenant_context(brand.tenant)


def test_erasing_cards_a_member_won_is_refused_in_the_admin(alpha: Brand) -> None:
    with tenant_context_of(alpha):
        card_set = make_set(("鼠", "牛"))
        mouse, ox = set_cards(card_set)
        give(member(), mouse)
    rows = [
        {
            "id": str(mouse.pk),
            "card_set": str(card_set.pk),
            "name": "鼠",
            "weight": "100",
            "position": "0",
            "DELETE": "on",
        },
        {"id": str(ox.pk), "card_set": str(card_set.pk), "name": "牛", "weight": "100", "position": "1"},
    ]
    response = alpha.client("owner").post(
        f"{ADMIN}/cardset/{card_set.pk}/change/", _set_form(rows, existing=2, name="福禄寿", reward_amount_yuan="88")
    )
    assert response.status_code == 200
    assert "已有会员获得，不能删除" in response.content.decode()
    with tenant_context_of(alpha):
        assert Card.objects.filter(pk=mouse.pk).exists()


def test_the_admin_lists_exchanges_gifts_and_the_ledger(alpha: Brand) -> None:
    with tenant_context_of(alpha):
        card_set = make_set()
        someone = member()
        give(someone, *set_cards(card_set), set_cards(card_set)[0])
        cards.gift(someone, set_cards(card_set)[0].pk)
        cards.exchange(someone, card_set.pk)
    client = alpha.client("owner")
    for model in ("cardsetredemption", "cardgift", "cardentry"):
        listing = client.get(f"{ADMIN}/{model}/", {"q": str(someone.pk)})
        assert listing.status_code == 200, model
        assert client.get(f"{ADMIN}/{model}/add/").status_code == 403
    assert "set:" in client.get(f"{ADMIN}/cardentry/").content.decode()
    sets = client.get(f"{ADMIN}/cardset/")
    assert sets.status_code == 200
    assert "1/100" in sets.content.decode()  # exchanged / reward quantity
    assert "集齐红包" in client.get(f"{ADMIN}/cardsetredemption/").content.decode()


def test_a_prize_of_kind_card_is_made_in_the_campaign_admin(alpha: Brand) -> None:
    from tests.rewards.test_admin import _campaign_form, _prize_row

    with tenant_context_of(alpha):
        card_set = make_set(exchange_ends_at=datetime(2030, 6, 1, tzinfo=SHANGHAI))
        short = make_set(name="短期", exchange_ends_at=datetime(2030, 1, 15, tzinfo=SHANGHAI))
    client = alpha.client("owner")
    row = _prize_row(name="集卡", kind="card", card_set=str(card_set.pk), odds_percent="50")
    response = client.post(f"{ADMIN}/campaign/add/", _campaign_form([row], name="集卡活动"))
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_context_of(alpha):
        prize = Prize.objects.get(campaign__name="集卡活动")
        assert (prize.kind, prize.card_set_id, prize.odds_ppm) == ("card", card_set.pk, 500_000)
    late = _prize_row(name="集卡", kind="card", card_set=str(short.pk), odds_percent="50")
    refused = client.post(f"{ADMIN}/campaign/add/", _campaign_form([late], name="太晚"))
    assert refused.status_code == 200
    assert "兑换截止时间须晚于活动结束时间" in refused.content.decode()
    missing = _prize_row(name="集卡", kind="card", odds_percent="50")
    assert "选择卡片套系" in client.post(f"{ADMIN}/campaign/add/", _campaign_form([missing])).content.decode()
    with tenant_context_of(alpha):
        assert not Campaign.objects.filter(name="太晚").exists()
