"""Member levels, tags and addresses.

Levels (commerce.models.MemberLevel): a member's growth is the points they have earned (credits of
kinds scan, order, referral, card and positive adjustments; refunds and expiry do not count) and what
they have paid for orders minus what was refunded; their level is the active level of the highest
rank whose threshold (either) they reach. `recompute_level` runs in a transaction of its own, after a
payment, a refund or a points credit (on commit), under the member's row lock.

Tags: manual tags are put on and taken off by staff; a rule tag's taggings are made to match its rule
by `evaluate_rule_tag` (the daily task).

Addresses: one default per member, kept under the member's row lock (the partial unique index is the
backstop); a member's first address becomes the default, deleting the default promotes the newest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import regions
from commerce.errors import MemberLevelErrorCode as E
from commerce.models import (
    Address,
    Member,
    MemberLevel,
    MemberTag,
    MemberTagging,
    Order,
    PaymentStatus,
    PointsEntry,
    PointsKind,
    TagKind,
)
from tenants.errors import Conflict, JiumaError, NotFound

MAX_ADDRESSES = 20
_EARNED = Q(kind__in=[PointsKind.SCAN, PointsKind.ORDER, PointsKind.REFERRAL, PointsKind.CARD]) | Q(
    kind=PointsKind.ADJUSTMENT, amount__gt=0
)


# --- levels -------------------------------------------------------------------------------------


def growth_of(member_id: int) -> tuple[int, int]:
    """(points earned, spend in fen) of the member."""
    earned = PointsEntry.objects.filter(_EARNED, member_id=member_id).aggregate(s=Sum("amount"))["s"] or 0
    spend = (
        Order.objects.filter(member_id=member_id, payment_status=PaymentStatus.PAID).aggregate(
            s=Sum("total_fen") - Sum("refunded_fen")
        )["s"]
        or 0
    )
    return int(earned), int(spend)


def level_for(earned_points: int, spend_fen: int, levels: list[MemberLevel] | None = None) -> MemberLevel | None:
    """The active level of the highest rank whose points or spend threshold is reached."""
    candidates = levels if levels is not None else list(MemberLevel.objects.filter(is_active=True))
    best = None
    for level in candidates:
        if not level.is_active:
            continue
        reached = (level.min_points is not None and earned_points >= level.min_points) or (
            level.min_spend_fen is not None and spend_fen >= level.min_spend_fen
        )
        if reached and (best is None or level.rank > best.rank):
            best = level
    return best


def recompute_level(member_id: int) -> MemberLevel | None:
    """Assign the member the level their growth earns (a transaction of its own)."""
    with transaction.atomic(durable=True):
        member = Member.objects.select_for_update().filter(pk=member_id).first()
        if member is None:
            raise NotFound("member_not_found", _("会员不存在。"))
        level = level_for(*growth_of(member_id))
        level_id = level.pk if level is not None else None
        if member.level_id != level_id:
            Member.objects.filter(pk=member_id).update(level_id=level_id)
        return level


def recompute_all(*, batch: int = 500) -> int:
    """Recompute every member's level (after the levels changed); returns how many changed."""
    levels = list(MemberLevel.objects.filter(is_active=True))
    changed = 0
    last = 0
    while True:
        ids = list(
            Member.objects.filter(pk__gt=last, erased_at__isnull=True)
            .order_by("pk")
            .values_list("pk", "level_id")[:batch]
        )
        if not ids:
            return changed
        for member_id, level_id in ids:
            level = level_for(*growth_of(member_id), levels=levels)
            if (level.pk if level else None) != level_id:
                recompute_level(member_id)
                changed += 1
        last = ids[-1][0]


# --- tags ---------------------------------------------------------------------------------------


def _tag(tag_id: int) -> MemberTag:
    tag = MemberTag.objects.filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(E.TAG_NOT_FOUND, _("标签不存在。"))
    return tag


def add_tag(member_id: int, tag_id: int, *, actor: str) -> bool:
    """Staff put a manual tag on a member (True if it was not there)."""
    tag = _tag(tag_id)
    if tag.kind != TagKind.MANUAL:
        raise JiumaError(E.TAG_IS_RULE, _("规则标签由系统按规则打标，不能手动添加。"))
    if not Member.objects.filter(pk=member_id).exists():
        raise NotFound("member_not_found", _("会员不存在。"))
    _obj, created = MemberTagging.objects.get_or_create(
        member_id=member_id, tag=tag, defaults={"created_by": actor[:150]}
    )
    return created


def remove_tag(member_id: int, tag_id: int) -> bool:
    tag = _tag(tag_id)
    if tag.kind != TagKind.MANUAL:
        raise JiumaError(E.TAG_IS_RULE, _("规则标签由系统按规则打标，不能手动移除。"))
    deleted, _rows = MemberTagging.objects.filter(member_id=member_id, tag=tag).delete()
    return bool(deleted)


_RULE_KEYS = {"min_spend_fen", "min_orders", "min_points", "level_ranks", "region_prefixes", "inactive_days"}


def matching_members(rule: dict[str, Any], *, now: datetime | None = None) -> QuerySet[Member]:
    """The members a rule selects (every key must hold). `scanned_sku_ids` is not supported here
    (scans live in codes/, above commerce)."""
    now = now or timezone.now()
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        raise JiumaError(E.INVALID_RULE, _("不支持的规则条件：%(keys)s") % {"keys": ", ".join(sorted(unknown))})
    members = Member.objects.filter(erased_at__isnull=True)
    paid = Order.objects.filter(member_id=OuterRef("pk"), payment_status=PaymentStatus.PAID).values("member_id")
    if "min_spend_fen" in rule:
        spend = paid.annotate(s=Sum("total_fen") - Sum("refunded_fen")).values("s")
        members = members.annotate(_spend=Coalesce(Subquery(spend), Value(0))).filter(
            _spend__gte=int(rule["min_spend_fen"])
        )
    if "min_orders" in rule:
        count = paid.annotate(c=Count("id")).values("c")
        members = members.annotate(_orders=Coalesce(Subquery(count), Value(0))).filter(
            _orders__gte=int(rule["min_orders"])
        )
    if "min_points" in rule:
        earned = (
            PointsEntry.objects.filter(_EARNED, member_id=OuterRef("pk"))
            .values("member_id")
            .annotate(s=Sum("amount"))
            .values("s")
        )
        members = members.annotate(_earned=Coalesce(Subquery(earned), Value(0))).filter(
            _earned__gte=int(rule["min_points"])
        )
    if "level_ranks" in rule:
        members = members.filter(level__rank__in=[int(r) for r in rule["level_ranks"]], level__is_active=True)
    if "region_prefixes" in rule:
        region = Q()
        for prefix in rule["region_prefixes"]:
            region |= Q(addresses__is_default=True, addresses__region_code__startswith=str(prefix))
        members = members.filter(region)
    if "inactive_days" in rule:
        members = members.filter(last_seen_at__lte=now - timedelta(days=int(rule["inactive_days"])))
    return members.distinct()


def evaluate_rule_tag(tag_id: int, *, now: datetime | None = None) -> tuple[int, int]:
    """Make the rule tag's taggings match its rule: (added, removed)."""
    tag = _tag(tag_id)
    if tag.kind != TagKind.RULE:
        raise JiumaError(E.INVALID_RULE, _("只有规则标签可以按规则打标。"))
    wanted = set(matching_members(tag.rule, now=now).values_list("pk", flat=True))
    with transaction.atomic(durable=True):
        have = set(MemberTagging.objects.filter(tag=tag).values_list("member_id", flat=True))
        removed, _rows = MemberTagging.objects.filter(tag=tag, member_id__in=have - wanted).delete()
        MemberTagging.objects.bulk_create(
            [MemberTagging(member_id=m, tag=tag) for m in wanted - have], ignore_conflicts=True
        )
    return len(wanted - have), removed


def evaluate_all_rule_tags(*, now: datetime | None = None) -> int:
    changed = 0
    for tag_id in MemberTag.objects.filter(kind=TagKind.RULE).values_list("pk", flat=True):
        added, removed = evaluate_rule_tag(tag_id, now=now)
        changed += added + removed
    return changed


# --- addresses ----------------------------------------------------------------------------------

_ADDRESS_FIELDS = ("receiver_name", "phone", "region_code", "detail", "postal_code")


def _clean_address(fields: dict[str, Any]) -> dict[str, str]:
    unknown = set(fields) - set(_ADDRESS_FIELDS)
    if unknown:
        raise JiumaError(E.INVALID_ADDRESS, _("地址字段无效。"), fields={"unknown": sorted(unknown)})
    cleaned = {key: str(value).strip() for key, value in fields.items()}
    probe = Address(
        member_id=0, **{"receiver_name": "x", "phone": "00000", "region_code": "110101", "detail": "x", **cleaned}
    )
    try:
        probe.full_clean(exclude=["member"], validate_unique=False, validate_constraints=True)
        if "region_code" in cleaned:
            regions.validate(cleaned["region_code"])
    except (ValidationError, regions.UnknownRegionError) as exc:
        detail = exc.message_dict if isinstance(exc, ValidationError) and hasattr(exc, "error_dict") else str(exc)
        raise JiumaError(E.INVALID_ADDRESS, _("收货地址填写不完整或格式不正确。"), fields={"errors": detail}) from None
    return cleaned


def _locked_member(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id, erased_at__isnull=True).first()
    if member is None:
        raise NotFound("member_not_found", _("会员不存在。"))
    return member


def add_address(member_id: int, *, is_default: bool = False, **fields: Any) -> Address:
    """Add an address (the member's first becomes the default)."""
    for required in ("receiver_name", "phone", "region_code", "detail"):
        if not str(fields.get(required, "")).strip():
            raise JiumaError(E.INVALID_ADDRESS, _("收货地址填写不完整或格式不正确。"), fields={"missing": required})
    cleaned = _clean_address(fields)
    with transaction.atomic(durable=True):
        _locked_member(member_id)
        count = Address.objects.filter(member_id=member_id).count()
        if count >= MAX_ADDRESSES:
            raise Conflict(E.TOO_MANY_ADDRESSES, _("最多保存 %(n)d 个收货地址。") % {"n": MAX_ADDRESSES})
        make_default = is_default or count == 0
        if make_default:
            Address.objects.filter(member_id=member_id, is_default=True).update(is_default=False)
        return Address.objects.create(member_id=member_id, is_default=make_default, **cleaned)


def _address(member_id: int, address_id: int) -> Address:
    address = Address.objects.filter(pk=address_id, member_id=member_id).first()
    if address is None:
        raise NotFound(E.ADDRESS_NOT_FOUND, _("收货地址不存在。"))
    return address


def update_address(member_id: int, address_id: int, **fields: Any) -> Address:
    cleaned = _clean_address(fields)
    with transaction.atomic(durable=True):
        _locked_member(member_id)
        address = _address(member_id, address_id)
        for key, value in cleaned.items():
            setattr(address, key, value)
        address.save()
    return address


def set_default(member_id: int, address_id: int) -> Address:
    """Make the address the member's default (the previous default stops being one)."""
    with transaction.atomic(durable=True):
        _locked_member(member_id)
        address = _address(member_id, address_id)
        Address.objects.filter(member_id=member_id, is_default=True).exclude(pk=address_id).update(is_default=False)
        Address.objects.filter(pk=address_id).update(is_default=True)
    address.is_default = True
    return address


def delete_address(member_id: int, address_id: int) -> None:
    """Delete an address; if it was the default, the newest remaining one becomes the default."""
    with transaction.atomic(durable=True):
        _locked_member(member_id)
        address = _address(member_id, address_id)
        address.delete()
        if address.is_default:
            newest = Address.objects.filter(member_id=member_id).order_by("-updated_at", "-id").first()
            if newest is not None:
                Address.objects.filter(pk=newest.pk).update(is_default=True)


def default_address(member_id: int) -> Address | None:
    return Address.objects.filter(member_id=member_id, is_default=True).first()
