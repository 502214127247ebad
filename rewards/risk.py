"""Risk control of claims (羊毛党): rules over recent claims and known-bad lists, configurable per
brand (RiskPolicy, BlockedItem). A claim that trips any rule is still drawn and counted (so trying
again does not help) but held: nothing is paid or credited until staff review it, and the reasons
are kept on the claim for them. Reads only: the caller decides.

Rules:
- velocity: claims per hour by the same member, device (browser cookie) and IP address;
- a burst of new accounts: members created within the observation period claiming from one IP;
- place: the scan located outside the authorised areas of the bottle's dealer (an opened bottle
  carried far from where it was sold: 开盖酒, or a diversion);
- lists: the member's openid, the IP or the device on the brand's block list.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext as _

from commerce.models import Member
from commerce.selectors import dealer_covers
from rewards.models import BlockedItem, BlockKind, Claim, RiskPolicy
from tenants.db import connection, prepared

HOUR = timedelta(hours=1)


# The brand's rules and block list, read at most every CACHE_SECONDS per process: a change made in
# the console applies to every server within that time.
CACHE_SECONDS = 30.0
_rules: dict[str, tuple[float, RiskPolicy, dict[str, frozenset[str]], dict[tuple[str, str], str]]] = {}


def forget() -> None:
    _rules.clear()


def _current() -> tuple[RiskPolicy, dict[str, frozenset[str]], dict[tuple[str, str], str]]:
    schema = connection.schema_name
    cached = _rules.get(schema)
    clock = time.monotonic()
    if cached is None or cached[0] <= clock:
        rules = RiskPolicy.current()
        reasons = {(item.kind, item.value): item.reason for item in BlockedItem.objects.all()}
        listed = {kind: frozenset(value for k, value in reasons if k == kind) for kind in BlockKind.values}
        cached = (clock + CACHE_SECONDS, rules, listed, reasons)
        _rules[schema] = cached
    return cached[1], cached[2], cached[3]


def policy() -> RiskPolicy:
    return _current()[0]


def assess(
    member: Member,
    *,
    ip: str | None,
    device: str,
    region_code: str,
    dealer: Any = None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The reasons to hold this claim (empty: none), each {"rule", "detail"} in Chinese for staff."""
    rules, listed, why = _current()
    reasons: list[dict[str, Any]] = []
    since = now - HOUR

    def hold(rule: str, detail: str) -> None:
        reasons.append({"rule": rule, "detail": detail})

    for kind, value in ((BlockKind.OPENID, member.openid or ""), (BlockKind.IP, ip or ""), (BlockKind.DEVICE, device)):
        if value and value in listed[kind]:
            detail = _("%(kind)s在风控名单中：%(reason)s")
            hold("blocked", detail % {"kind": BlockKind(kind).label, "reason": why[(kind, value)]})
    # The velocity counts in one statement, each over its own index-backed condition (raw SQL: this
    # runs on every draw, and building the ORM aggregate costs several times the round trip).
    watched = {
        "member": (rules.member_claims_per_hour, "member_id", member.pk),
        "device": (rules.device_claims_per_hour if device else 0, "device", device),
        "ip": (rules.ip_claims_per_hour if ip else 0, "ip", ip),
    }
    active = {name: (limit, column, value) for name, (limit, column, value) in watched.items() if limit}
    if active:
        # Column names come from the table above, never from input; the values are parameters.
        counted = ", ".join(f"count(*) FILTER (WHERE {column} = %s)" for _limit, column, _value in active.values())
        either = " OR ".join(f"{column} = %s" for _limit, column, _value in active.values())
        values = [value for _limit, _column, value in active.values()]
        statement = f"SELECT {counted} FROM rewards_claim WHERE created_at >= %s AND ({either})"  # noqa: S608
        with prepared(statement, [*values, since, *values]) as cursor:
            row = cursor.fetchone()
        assert row is not None  # an aggregate always returns its row
        counts = dict(zip(active, row, strict=True))
        messages = {
            "member": _("该会员一小时内已抽奖 %(count)d 次"),
            "device": _("该设备一小时内已抽奖 %(count)d 次"),
            "ip": _("该 IP 一小时内已抽奖 %(count)d 次"),
        }
        for name, (limit, _column, _value) in active.items():
            if counts[name] >= limit:
                hold(f"{name}_velocity", messages[name] % {"count": counts[name]})
    if rules.new_member_minutes and rules.new_member_burst and ip:
        window = now - timedelta(minutes=rules.new_member_minutes)
        if member.created_at >= window:
            newcomers = (
                Claim.objects.filter(ip=ip, created_at__gte=window, member__created_at__gte=window)
                .values("member_id")
                .distinct()
                .count()
            )
            if newcomers >= rules.new_member_burst:
                detail = _("同一 IP 在 %(minutes)d 分钟内有 %(count)d 个新会员抽奖")
                hold("new_member_burst", detail % {"minutes": rules.new_member_minutes, "count": newcomers})
    if (
        rules.hold_outside_dealer_area
        and dealer is not None
        and region_code
        and dealer_covers(dealer, region_code) is False
    ):
        detail = _("扫码地 %(region)s 不在经销商 %(dealer)s 的授权区域")
        hold("outside_dealer_area", detail % {"region": region_code, "dealer": dealer.name})
    return reasons
