"""Member levels (points or spend), tags (manual and rule) and addresses (one default, also when
set concurrently)."""

from __future__ import annotations

from typing import Any

import pytest

from commerce.models import Address, Member, MemberLevel, MemberTag, MemberTagging
from commerce.services import members_levels, points
from tenants.errors import JiumaError
from tests.commerce.test_orders import _n, buyer, committed, many_connections  # noqa: F401
from tests.conftest import Brand
from tests.support.threads import run_concurrently


def code_of(call: Any) -> str:
    with pytest.raises(JiumaError) as caught:
        call()
    return caught.value.code


def test_the_level_is_the_highest_rank_reached_by_points_or_spend(in_alpha: Brand) -> None:
    MemberLevel.objects.all().update(is_active=False)
    base = _n() % 10_000
    silver = MemberLevel.objects.create(name=f"银{base}", rank=base + 1, min_points=100)
    gold = MemberLevel.objects.create(name=f"金{base}", rank=base + 2, min_points=1_000, min_spend_fen=50_000)
    MemberLevel.objects.create(name=f"钻{base}", rank=base + 3, min_points=5_000, is_active=False)
    assert members_levels.level_for(99, 0) is None
    assert members_levels.level_for(100, 0) == silver
    assert members_levels.level_for(0, 50_000) == gold
    assert members_levels.level_for(10_000, 0) == gold  # the diamond level is off

    member = buyer()
    points.credit(member.pk, 150, kind="scan", source=f"scan:{_n()}")
    points.credit(member.pk, 5_000, kind="refund", source=f"refund:{_n()}")  # refunds do not count
    assert members_levels.recompute_level(member.pk) == silver
    assert Member.objects.get(pk=member.pk).level == silver


def test_manual_and_rule_tags(in_alpha: Brand) -> None:
    member, other = buyer(), buyer()
    manual = MemberTag.objects.create(name=f"VIP{_n()}")
    assert members_levels.add_tag(member.pk, manual.pk, actor="staff:ops")
    assert not members_levels.add_tag(member.pk, manual.pk, actor="staff:ops")
    assert members_levels.remove_tag(member.pk, manual.pk)
    rule = MemberTag.objects.create(name=f"爱扫码{_n()}", kind="rule", rule={"min_points": 200})
    assert code_of(lambda: members_levels.add_tag(member.pk, rule.pk, actor="staff:ops")) == "member_tag_is_rule"
    points.credit(member.pk, 300, kind="scan", source=f"scan:{_n()}")
    points.credit(other.pk, 100, kind="scan", source=f"scan:{_n()}")
    added, removed = members_levels.evaluate_rule_tag(rule.pk)
    assert set(MemberTagging.objects.filter(tag=rule).values_list("member_id", flat=True)) == {member.pk}
    assert (added, removed) == (1, 0)
    MemberTag.objects.filter(pk=rule.pk).update(rule={"min_points": 500})
    assert members_levels.evaluate_rule_tag(rule.pk) == (0, 1)


def address(member_id: int, **fields: Any) -> Address:
    values = {"receiver_name": "李四", "phone": "13900139000", "region_code": "520102", "detail": "中华路 2 号"}
    values.update(fields)
    return members_levels.add_address(member_id, **values)


def test_addresses_keep_one_default(in_alpha: Brand) -> None:
    member = buyer()
    first = address(member.pk)
    assert first.is_default
    second = address(member.pk)
    assert not second.is_default
    third = address(member.pk, is_default=True)
    members_levels.set_default(member.pk, second.pk)
    assert list(Address.objects.filter(member=member, is_default=True).values_list("pk", flat=True)) == [second.pk]
    members_levels.delete_address(member.pk, second.pk)
    assert Address.objects.filter(member=member, is_default=True).count() == 1
    assert members_levels.update_address(member.pk, third.pk, detail="新地址").detail == "新地址"
    assert code_of(lambda: address(member.pk, region_code="999999")) == "invalid_address"
    assert code_of(lambda: address(member.pk, phone="abc")) == "invalid_address"
    assert code_of(lambda: members_levels.set_default(buyer().pk, third.pk)) == "address_not_found"


@many_connections
def test_concurrent_default_changes_leave_one_default(
    alpha: Brand,
    committed: dict[str, list[int]],  # noqa: F811 (the fixture)
) -> None:
    def setup() -> tuple[int, list[int]]:
        member = buyer()
        return member.pk, [address(member.pk).pk for _ in range(10)]

    ((member_id, address_ids),) = run_concurrently([setup], tenant=alpha.tenant)
    committed["members"].append(member_id)
    jobs = [lambda a=a: members_levels.set_default(member_id, a) for a in address_ids]
    jobs += [lambda: address(member_id, is_default=True) for _ in range(5)]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes[:3]

    def defaults() -> int:
        return Address.objects.filter(member_id=member_id, is_default=True).count()

    assert run_concurrently([defaults], tenant=alpha.tenant) == [1]
