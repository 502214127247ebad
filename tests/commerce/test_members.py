"""Members: created once per openid, phone kept encrypted, consents recorded, own data exported and erased."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context

from commerce.models import ConsentPurpose, Member, MemberConsent, PointsEntry, PointsKind
from commerce.services import members, points
from commerce.services.members import Identity
from tenants import keys
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently


@pytest.fixture
def in_alpha(alpha: Brand) -> Iterator[Brand]:
    with tenant_context(alpha.tenant):
        yield alpha


def test_the_first_identification_creates_the_member_and_later_ones_find_it(in_alpha: Brand) -> None:
    member, created = members.identify(Identity(openid="o-abc", unionid="u-1", nickname="张三"))
    assert created
    again, created_again = members.identify(Identity(openid="o-abc", nickname="张三丰"))
    assert (again.pk, created_again) == (member.pk, False)
    member.refresh_from_db()
    assert member.nickname == "张三丰"  # WeChat's newer profile wins
    assert member.unionid == "u-1"  # an empty field never erases a known one


@pytest.mark.parametrize("openid", ["", "   ", "x" * 65, "o\x00bad"])
def test_a_malformed_openid_is_refused(in_alpha: Brand, openid: str) -> None:
    with pytest.raises(JiumaError) as refused:
        members.identify(Identity(openid=openid))
    assert refused.value.code == "invalid_identity"
    assert not Member.objects.exists()


def test_an_avatar_that_is_not_https_is_not_kept(in_alpha: Brand) -> None:
    member, _ = members.identify(Identity(openid="o-av", avatar_url="javascript:alert(1)"))
    assert member.avatar_url == ""


def test_concurrent_first_scans_of_one_consumer_make_one_member(alpha: Brand) -> None:
    outcomes = run_concurrently(
        [lambda: members.identify(Identity(openid="o-race", nickname="李四")) for _ in range(8)], tenant=alpha.tenant
    )
    try:
        assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
        assert len({member.pk for member, _ in outcomes}) == 1
        assert sum(1 for _, created in outcomes if created) == 1
    finally:
        run_concurrently([lambda: Member.objects.filter(openid="o-race").delete()], tenant=alpha.tenant)


def test_a_phone_number_is_stored_encrypted_and_bound_to_its_member(in_alpha: Brand) -> None:
    member, _ = members.identify(Identity(openid="o-phone"))
    members.set_phone(member, "+86 138-0013-8000")
    member.refresh_from_db()
    assert member.phone_hint == "138****8000"
    assert b"13800138000" not in bytes(member.phone_wrapped)
    assert members.phone_of(member) == "13800138000"
    # The blob copied onto another member does not open there.
    other, _ = members.identify(Identity(openid="o-other"))
    Member.objects.filter(pk=other.pk).update(phone_key_id=member.phone_key_id, phone_wrapped=member.phone_wrapped)
    other.refresh_from_db()
    with pytest.raises(keys.KeyUnavailable):
        members.phone_of(other)
    with pytest.raises(JiumaError) as refused:
        members.set_phone(member, "12345")
    assert refused.value.code == "invalid_phone"
    members.set_phone(member, "")
    member.refresh_from_db()
    assert (member.phone_wrapped, member.phone_hint) == (None, "")


def test_consent_is_the_newest_decision_and_unknown_purposes_are_refused(in_alpha: Brand) -> None:
    member, _ = members.identify(Identity(openid="o-consent"))
    assert not members.has_consent(member, ConsentPurpose.PRIVACY_POLICY)
    members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True, ip="1.2.3.4")
    assert members.has_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11")
    assert not members.has_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2027-01")
    members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=False)
    assert not members.has_consent(member, ConsentPurpose.PRIVACY_POLICY)
    assert MemberConsent.objects.filter(member=member).count() == 2  # the history stays
    with pytest.raises(JiumaError) as refused:
        members.record_consent(member, "selling-data", version="1", granted=True)
    assert refused.value.code == "invalid_consent"


def test_a_member_gets_a_copy_of_their_data(in_alpha: Brand) -> None:
    member, _ = members.identify(Identity(openid="o-export", nickname="王五"))
    members.set_phone(member, "13900139000")
    members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True)
    points.credit(member.pk, 20, kind=PointsKind.SCAN, source="scan:9")
    member.refresh_from_db()
    data = members.export(member)
    assert data["member"]["openid"] == "o-export"
    assert data["member"]["phone"] == "13900139000"
    assert data["member"]["points_balance"] == 20
    assert [c["purpose"] for c in data["consents"]] == ["privacy"]
    assert [(p["amount"], p["source"]) for p in data["points"]] == [(20, "scan:9")]
    assert data["points"][0]["at"].endswith("+08:00")  # shown in Shanghai time


def test_erasing_a_member_removes_their_identity_but_keeps_the_ledgers_whole(in_alpha: Brand) -> None:
    member, _ = members.identify(Identity(openid="o-erase", unionid="u-e", nickname="赵六", avatar_url="https://a/b"))
    members.set_phone(member, "13700137000")
    members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True, ip="1.2.3.4")
    points.credit(member.pk, 15, kind=PointsKind.SCAN, source="scan:3")
    erased = members.erase(member)
    assert erased.is_erased
    assert (erased.openid, erased.unionid, erased.nickname, erased.avatar_url) == (None, "", "", "")
    assert (erased.phone_wrapped, erased.phone_hint) == (None, "")
    assert PointsEntry.objects.filter(member=member).count() == 1
    assert not MemberConsent.objects.filter(member=member).exclude(ip=None).exists()
    assert not members.has_consent(erased, ConsentPurpose.PRIVACY_POLICY)
    assert members.erase(erased).erased_at == erased.erased_at  # idempotent
    with pytest.raises(JiumaError):
        members.get_member(member.pk)
    # The same WeChat user coming back is a new member with nothing of the old one.
    again, created = members.identify(Identity(openid="o-erase"))
    assert created
    assert again.pk != member.pk
    assert again.points_balance == 0
