"""The sales channel's services: dealers and their areas, stores, channel staff; what they refuse
(a coded JiumaError with a Chinese message, nothing written), what they audit, and dealer_covers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from commerce import regions, selectors
from commerce.models import ChannelStaff, ChannelStatus, Dealer, DealerArea, DealerLevel, Store
from commerce.services import channel
from tenants.brand.models import AuditEntry, User
from tenants.brand.services import check_staff_quota
from tenants.db import connection
from tenants.errors import JiumaError
from tenants.models import Plan, Tenant
from tests.commerce.conftest import (
    CJK,
    GUIYANG,
    GUIZHOU,
    HONGHUAGANG,
    NANMING,
    YUNNAN,
    YUNYAN,
    ZUNYI,
    audit_since,
    last_audit_id,
)
from tests.conftest import Brand

pytestmark = pytest.mark.usefixtures("in_alpha")


def _refused(expected: str, call: Any, /, *args: Any, **kwargs: Any) -> JiumaError:
    """`call` raises the JiumaError `expected` with a Chinese message, and writes nothing."""
    counts = (Dealer.objects.count(), DealerArea.objects.count(), Store.objects.count(), User.objects.count())
    since = last_audit_id()
    with pytest.raises(JiumaError) as caught, transaction.atomic():
        call(*args, **kwargs)
    assert caught.value.code == expected, (caught.value.code, caught.value.message)
    assert CJK.search(caught.value.message), caught.value.message
    assert counts == (Dealer.objects.count(), DealerArea.objects.count(), Store.objects.count(), User.objects.count())
    assert audit_since(since) == []
    return caught.value


def _dealer(code: str = "D1", areas: tuple[str, ...] = (GUIYANG,), **kwargs: Any) -> Dealer:
    return channel.create_dealer(code=code, name=f"经销商{code}", areas=areas, **kwargs)


def _store(dealer: Dealer, code: str = "S1", region: str = NANMING, **kwargs: Any) -> Store:
    return channel.create_store(code=code, name=f"门店{code}", dealer_id=dealer.pk, region_code=region, **kwargs)


# --- regions.coverage, the rule under dealer_covers ------------------------------------------------


@pytest.mark.parametrize(
    ("region", "areas", "expected"),
    [
        (NANMING, [GUIYANG], True),  # a county inside the city
        (NANMING, [GUIZHOU], True),  # ... and inside the province
        (GUIYANG, [GUIYANG], True),  # the area itself
        (NANMING, [NANMING, ZUNYI], True),
        (HONGHUAGANG, [GUIYANG], False),  # another city's county
        (ZUNYI, [GUIYANG], False),  # another city
        ("530102", [GUIZHOU], False),  # another province
        (GUIYANG, [NANMING], None),  # a city when the area is one of its counties: cannot tell
        (GUIZHOU, [GUIYANG], None),  # a province when the area is one of its cities
        (GUIZHOU, [NANMING], None),
        (ZUNYI, [NANMING, YUNNAN], False),  # no area inside it, none around it
        ("999999", [GUIZHOU], None),  # unknown place
        ("abc", [GUIZHOU], None),
        (NANMING, [], None),  # no area at all
        ("110105", ["110000"], True),  # a municipality's district
        ("110000", ["110105"], None),
        ("419001", ["410000"], True),  # a county-level unit directly under its province
    ],
)
def test_coverage_tells_inside_outside_and_inconclusive(region: str, areas: list[str], expected: bool | None) -> None:
    assert regions.coverage(region, areas) is expected


# --- dealers ------------------------------------------------------------------------------------------


def test_creating_a_dealer_stores_it_with_its_areas_and_audits_both(alpha: Brand) -> None:
    since = last_audit_id()
    dealer = channel.create_dealer(
        code=" gz-01 ",
        name=" 贵州一级经销商 ",
        contact_name="张三",
        contact_phone="13800000000",
        areas=[ZUNYI, NANMING],
    )
    assert (dealer.code, dealer.name, dealer.level, dealer.status) == ("GZ-01", "贵州一级经销商", 1, "active")
    assert selectors.area_codes(dealer.pk) == [NANMING, ZUNYI]
    (entry,) = audit_since(since)
    assert (entry.action, entry.object_type, entry.object_id) == ("create", "commerce.dealer", str(dealer.pk))
    assert entry.before is None
    assert entry.after["code"] == "GZ-01"
    assert entry.after["areas"] == [NANMING, ZUNYI]
    assert entry.actor_name == "system"


def test_dealer_codes_are_unique_whatever_the_case() -> None:
    _dealer("JX-01")
    error = _refused("dealer_code_taken", channel.create_dealer, code="jx-01", name="另一家")
    assert error.status_code == 409
    assert "JX-01" in error.message


@pytest.mark.parametrize("code", ["", "  ", "-X", "有中文", "A" * 33, "A B"])
def test_a_malformed_dealer_code_is_refused(code: str) -> None:
    _refused("invalid_dealer", channel.create_dealer, code=code, name="经销商")


def test_a_dealer_needs_a_name_and_a_valid_phone() -> None:
    _refused("invalid_dealer", channel.create_dealer, code="D1", name=" ")
    _refused("invalid_phone", channel.create_dealer, code="D1", name="经销商", contact_phone="call me")


@pytest.mark.parametrize(
    ("areas", "code"),
    [
        (["999999"], "unknown_region"),
        (["52010"], "unknown_region"),
        (["贵州"], "unknown_region"),
        ([NANMING, NANMING], "overlapping_areas"),
        ([GUIZHOU, NANMING], "overlapping_areas"),  # the county is already inside the province
        ([NANMING, GUIYANG], "overlapping_areas"),
    ],
)
def test_bad_areas_are_refused(areas: list[str], code: str) -> None:
    error = _refused(code, channel.create_dealer, code="D1", name="经销商", areas=areas)
    assert error.fields


def test_an_unknown_region_is_named_in_the_message() -> None:
    error = _refused("unknown_region", channel.create_dealer, code="D1", name="经销商", areas=["999999"])
    assert "999999" in error.message
    assert error.fields == {"areas": "999999"}


def test_the_dealer_hierarchy_has_two_levels() -> None:
    first = _dealer("L1", areas=(GUIZHOU,))
    second = channel.create_dealer(code="L2", name="二级", level=DealerLevel.SECOND, parent_id=first.pk)
    assert second.parent == first
    _refused("parent_dealer_required", channel.create_dealer, code="X", name="二级", level=DealerLevel.SECOND)
    _refused("parent_dealer_not_allowed", channel.create_dealer, code="X", name="一级", parent_id=first.pk)
    error = _refused(
        "parent_dealer_is_second_level",
        channel.create_dealer,
        code="X",
        name="三级",
        level=DealerLevel.SECOND,
        parent_id=second.pk,
    )
    assert "二级" in error.message
    _refused("unknown_parent_dealer", channel.create_dealer, code="X", name="二级", level=2, parent_id=10**9)
    _refused("invalid_dealer", channel.create_dealer, code="X", name="三级", level=3)
    # A dealer with sub-dealers stays first-level; a second-level one is not its own parent.
    other = _dealer("L1B", areas=(GUIZHOU,))
    _refused("dealer_has_sub_dealers", channel.update_dealer, first.pk, level=DealerLevel.SECOND, parent_id=other.pk)
    _refused("parent_dealer_is_second_level", channel.update_dealer, second.pk, parent_id=second.pk)


def test_the_database_holds_the_level_rule_too() -> None:
    first = _dealer("L1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Dealer.objects.create(code="BAD", name="坏数据", level=DealerLevel.SECOND)
    with pytest.raises(IntegrityError), transaction.atomic():
        Dealer.objects.create(code="BAD", name="坏数据", level=DealerLevel.FIRST, parent=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        DealerArea.objects.create(dealer=first, region_code="5201")


def test_a_sub_dealer_cannot_be_added_under_a_suspended_dealer() -> None:
    first = _dealer("L1")
    channel.suspend_dealer(first.pk)
    _refused("parent_dealer_suspended", channel.create_dealer, code="L2", name="二级", level=2, parent_id=first.pk)


def test_a_sub_dealers_areas_lie_inside_its_parents() -> None:
    first = _dealer("L1", areas=(GUIYANG,))
    error = _refused(
        "area_outside_parent_dealer",
        channel.create_dealer,
        code="L2",
        name="二级",
        level=2,
        parent_id=first.pk,
        areas=[NANMING, ZUNYI],
    )
    assert "遵义市" in error.message
    second = channel.create_dealer(code="L2", name="二级", level=2, parent_id=first.pk, areas=[NANMING])
    _refused("area_outside_parent_dealer", channel.set_dealer_areas, second.pk, [HONGHUAGANG])
    # Moving it under a dealer whose areas do not contain its own is refused as well.
    zunyi = _dealer("ZY", areas=(ZUNYI,))
    _refused("area_outside_parent_dealer", channel.update_dealer, second.pk, parent_id=zunyi.pk)


def test_updating_a_dealer_audits_only_what_changed() -> None:
    dealer = _dealer("D1")
    since = last_audit_id()
    channel.update_dealer(dealer.pk, name="新名称", contact_phone="0851-1234567")
    (entry,) = audit_since(since)
    assert entry.action == "update"
    assert entry.before == {"name": "经销商D1", "contact_phone": ""}
    assert entry.after == {"name": "新名称", "contact_phone": "0851-1234567"}
    channel.update_dealer(dealer.pk, name="新名称")
    assert len(audit_since(since)) == 1, "nothing changed, nothing logged"
    with pytest.raises(TypeError):
        channel.update_dealer(dealer.pk, code="NEW")


def test_a_second_level_dealer_can_become_first_level() -> None:
    first = _dealer("L1", areas=(GUIZHOU,))
    second = channel.create_dealer(code="L2", name="二级", level=2, parent_id=first.pk)
    updated = channel.update_dealer(second.pk, level=DealerLevel.FIRST)
    assert (updated.level, updated.parent_id) == (DealerLevel.FIRST, None)


def test_suspending_and_resuming_a_dealer_is_audited_and_idempotent() -> None:
    dealer = _dealer("D1")
    since = last_audit_id()
    assert channel.suspend_dealer(dealer.pk).status == ChannelStatus.SUSPENDED
    assert channel.suspend_dealer(dealer.pk).status == ChannelStatus.SUSPENDED
    assert channel.resume_dealer(dealer.pk).status == ChannelStatus.ACTIVE
    entries = audit_since(since)
    assert [(e.before, e.after) for e in entries] == [
        ({"status": "active"}, {"status": "suspended"}),
        ({"status": "suspended"}, {"status": "active"}),
    ]
    _refused("dealer_not_found", channel.suspend_dealer, 10**9)


# --- areas --------------------------------------------------------------------------------------------


def test_setting_areas_replaces_the_whole_set_and_audits_before_and_after() -> None:
    dealer = _dealer("D1", areas=(GUIYANG, YUNNAN))
    kept = DealerArea.objects.get(dealer=dealer, region_code=GUIYANG)
    since = last_audit_id()
    assert channel.set_dealer_areas(dealer.pk, [ZUNYI, GUIYANG]) == [GUIYANG, ZUNYI]
    assert selectors.area_codes(dealer.pk) == [GUIYANG, ZUNYI]
    assert DealerArea.objects.get(dealer=dealer, region_code=GUIYANG).pk == kept.pk, "an unchanged area stays"
    (entry,) = audit_since(since)
    assert entry.before == {"areas": [GUIYANG, YUNNAN]}
    assert entry.after == {"areas": [GUIYANG, ZUNYI]}
    # The same set again changes and logs nothing; an empty set lifts the restriction.
    channel.set_dealer_areas(dealer.pk, [GUIYANG, ZUNYI])
    assert len(audit_since(since)) == 1
    assert channel.set_dealer_areas(dealer.pk, []) == []
    assert selectors.area_codes(dealer.pk) == []


def test_areas_are_validated_when_replaced() -> None:
    dealer = _dealer("D1")
    _refused("unknown_region", channel.set_dealer_areas, dealer.pk, [GUIYANG, "000000"])
    _refused("overlapping_areas", channel.set_dealer_areas, dealer.pk, [GUIZHOU, ZUNYI])
    _refused("dealer_not_found", channel.set_dealer_areas, 10**9, [GUIYANG])
    assert selectors.area_codes(dealer.pk) == [GUIYANG]


def test_areas_cannot_be_shrunk_away_from_stores_and_sub_dealers() -> None:
    first = _dealer("L1", areas=(GUIZHOU,))
    _store(first, "S-NM", NANMING)
    error = _refused("areas_exclude_stores_or_sub_dealers", channel.set_dealer_areas, first.pk, [ZUNYI])
    assert "S-NM" in error.message
    assert error.fields["stores"] == ["S-NM"]
    # A sub-dealer with its own areas...
    channel.create_dealer(code="L2", name="二级", level=2, parent_id=first.pk, areas=[HONGHUAGANG])
    error = _refused("areas_exclude_stores_or_sub_dealers", channel.set_dealer_areas, first.pk, [GUIYANG])
    assert error.fields["sub_dealers"] == ["L2"]
    # ... and the stores of a sub-dealer that inherits the parent's areas.
    inheriting = channel.create_dealer(code="L2B", name="二级乙", level=2, parent_id=first.pk)
    _store(inheriting, "S-YY", YUNYAN)
    error = _refused("areas_exclude_stores_or_sub_dealers", channel.set_dealer_areas, first.pk, [NANMING, ZUNYI])
    assert error.fields == {"stores": ["S-YY"], "sub_dealers": []}
    assert channel.set_dealer_areas(first.pk, [GUIYANG, ZUNYI]) == [GUIYANG, ZUNYI]


# --- dealer_covers (anti-diversion's question) --------------------------------------------------------


def test_dealer_covers_tells_inside_outside_and_inconclusive(django_assert_num_queries: Any) -> None:
    dealer = _dealer("D1", areas=(NANMING, ZUNYI))
    with django_assert_num_queries(1):
        assert selectors.dealer_covers(dealer, NANMING) is True
    assert selectors.dealer_covers(dealer, HONGHUAGANG) is True
    assert selectors.dealer_covers(dealer, YUNYAN) is False
    assert selectors.dealer_covers(dealer, "530102") is False
    assert selectors.dealer_covers(dealer, GUIYANG) is None  # a scan placed only to the city
    assert selectors.dealer_covers(dealer, GUIZHOU) is None
    assert selectors.dealer_covers(dealer, "123456") is None
    assert selectors.dealer_covers(_dealer("D2", areas=()), NANMING) is None  # no area set: no verdict


def test_a_sub_dealer_without_areas_is_covered_by_its_parents() -> None:
    first = _dealer("L1", areas=(GUIYANG,))
    inheriting = channel.create_dealer(code="L2", name="二级", level=2, parent_id=first.pk)
    own = channel.create_dealer(code="L3", name="二级乙", level=2, parent_id=first.pk, areas=[NANMING])
    assert selectors.effective_area_codes(inheriting) == [GUIYANG]
    assert selectors.dealer_covers(inheriting, YUNYAN) is True
    assert selectors.dealer_covers(own, YUNYAN) is False  # its own areas, not its parent's
    assert selectors.dealer_covers(own, NANMING) is True
    assert selectors.covers([NANMING], GUIYANG) is None


# --- stores -------------------------------------------------------------------------------------------


def test_creating_a_store_checks_its_dealer_and_region_and_masks_its_token_in_the_log() -> None:
    dealer = _dealer("D1", areas=(GUIYANG,))
    since = last_audit_id()
    store = _store(dealer, " s-01 ", NANMING, latitude=Decimal("26.5783411"), longitude=Decimal("106.7134"))
    assert store.code == "S-01"
    assert store.region_name == "贵州省贵阳市南明区"
    assert (store.latitude, store.longitude) == (Decimal("26.578341"), Decimal("106.713400"))
    assert len(store.qr_token) == 32
    (entry,) = audit_since(since)
    assert entry.after["code"] == "S-01"
    assert "qr_token" not in entry.after  # not an editable field: never copied into the log
    assert store.qr_token not in str(entry.after)
    other = _store(dealer, "S-02", YUNYAN)
    assert other.qr_token != store.qr_token
    assert selectors.store_by_qr_token(store.qr_token) == store
    assert selectors.store_by_qr_token("x" * 100) is None


def test_store_checks() -> None:
    dealer = _dealer("D1", areas=(NANMING, ZUNYI))
    _store(dealer, "S1", NANMING)
    _refused("store_code_taken", _store, dealer, "s1", NANMING)
    _refused("store_outside_dealer_area", _store, dealer, "S2", YUNYAN)
    error = _refused("store_region_too_coarse", _store, dealer, "S2", GUIYANG)  # the dealer holds a county only
    assert "区县" in error.message
    _refused("store_region_too_coarse", _store, dealer, "S2", GUIZHOU)
    _refused("unknown_region", _store, dealer, "S2", "520199")
    _refused("unknown_dealer", channel.create_store, code="S2", name="门店", dealer_id=10**9, region_code=NANMING)
    _refused("invalid_store", _store, dealer, "S 2", NANMING)
    _refused("invalid_store", _store, dealer, "S2", NANMING, latitude=Decimal(26))
    _refused("invalid_store", _store, dealer, "S2", NANMING, latitude=Decimal(91), longitude=Decimal(1))
    # A city-level store is fine where the dealer holds the whole city (or the city has no counties).
    assert _store(dealer, "S3", ZUNYI).region_code == ZUNYI
    unrestricted = _dealer("FREE", areas=())
    assert _store(unrestricted, "S4", "441900").region_name == "广东省东莞市"
    assert _store(unrestricted, "S5", "810000").region_code == "810000"  # 香港: nothing below the province


def test_stores_are_added_to_active_dealers_only() -> None:
    dealer = _dealer("D1")
    channel.suspend_dealer(dealer.pk)
    _refused("dealer_suspended", _store, dealer, "S1", NANMING)


def _on_plan(brand: Brand, **quotas: int) -> None:
    """The brand's plan gets these quotas (rolled back with the test), and the services see the brand
    itself, plan included (schema_context alone gives them a bare schema, without a plan)."""
    Plan.objects.filter(pk=brand.tenant.plan_id).update(**quotas)
    connection.set_tenant(Tenant.objects.select_related("plan").get(pk=brand.tenant.pk))


def test_the_plans_store_quota_counts_active_stores(alpha: Brand) -> None:
    dealer = _dealer("D1")
    first = _store(dealer, "S1", NANMING)
    _on_plan(alpha, max_stores=1)
    error = _refused("store_quota_exceeded", _store, dealer, "S2", YUNYAN)
    assert "1" in error.message
    channel.suspend_store(first.pk)
    second = _store(dealer, "S2", YUNYAN)
    _refused("store_quota_exceeded", channel.resume_store, first.pk)
    channel.suspend_store(second.pk)
    assert channel.resume_store(first.pk).is_active


def test_moving_a_store_is_checked_against_the_new_dealer() -> None:
    guiyang = _dealer("GY", areas=(GUIYANG,))
    zunyi = _dealer("ZY", areas=(ZUNYI,))
    store = _store(guiyang, "S1", NANMING)
    _refused("store_outside_dealer_area", channel.update_store, store.pk, dealer_id=zunyi.pk)
    since = last_audit_id()
    moved = channel.update_store(store.pk, dealer_id=zunyi.pk, region_code=HONGHUAGANG, address="红花岗区某路1号")
    assert (moved.dealer_id, moved.region_code) == (zunyi.pk, HONGHUAGANG)
    (entry,) = audit_since(since)
    assert entry.before == {"dealer": guiyang.pk, "region_code": NANMING, "address": ""}
    channel.suspend_dealer(guiyang.pk)
    _refused("dealer_suspended", channel.update_store, store.pk, dealer_id=guiyang.pk, region_code=NANMING)
    # Its own (now suspended) dealer does not stop other edits.
    channel.suspend_dealer(zunyi.pk)
    assert channel.update_store(store.pk, name="改名").name == "改名"


def test_rotating_a_stores_qr_token_retires_the_old_one() -> None:
    store = _store(_dealer())
    old = store.qr_token
    since = last_audit_id()
    new = channel.rotate_store_qr_token(store.pk).qr_token
    assert new != old
    assert selectors.store_by_qr_token(old) is None
    assert selectors.store_by_qr_token(new) == store
    (entry,) = audit_since(since)
    assert entry.action == "action"
    assert old not in str(entry.__dict__)
    assert new not in str(entry.__dict__)
    channel.suspend_store(store.pk)
    assert selectors.store_by_qr_token(new) is None, "a closed store's QR code does not count"


def test_deleting_is_for_dealers_and_stores_nothing_refers_to() -> None:
    dealer = _dealer("D1")
    store = _store(dealer)
    _refused("dealer_in_use", channel.delete_dealer, dealer.pk)
    channel.add_channel_staff(role="store_owner", phone="13900000000", store_id=store.pk)
    _refused("store_in_use", channel.delete_store, store.pk)
    unused = _dealer("D2")
    since = last_audit_id()
    channel.delete_dealer(unused.pk)
    assert not Dealer.objects.filter(pk=unused.pk).exists()
    assert not DealerArea.objects.filter(dealer_id=unused.pk).exists()
    (entry,) = audit_since(since)
    assert (entry.action, entry.object_type, entry.object_id) == ("delete", "commerce.dealer", str(unused.pk))
    assert entry.before["areas"] == [GUIYANG]


# --- channel staff ------------------------------------------------------------------------------------


def test_adding_a_store_clerk_creates_a_non_staff_account_with_the_role_group() -> None:
    store = _store(_dealer())
    since = last_audit_id()
    clerk = channel.add_channel_staff(role="store_clerk", phone="13900000001", store_id=store.pk, display_name="小王")
    user = clerk.user
    assert (user.username, user.display_name, user.phone) == ("13900000001", "小王", "13900000001")
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert [g.name for g in user.groups.all()] == ["store_clerk"]
    assert (clerk.store, clerk.dealer, clerk.is_active) == (store, None, True)
    (entry,) = audit_since(since)
    assert entry.object_type == "commerce.channelstaff"
    assert entry.after["username"] == "13900000001"
    assert entry.after["has_password"] is False
    assert selectors.channel_staff_of(user) == clerk


def test_a_dealer_manager_with_a_password_can_sign_in_with_it() -> None:
    dealer = _dealer()
    manager = channel.add_channel_staff(
        role="dealer_manager",
        phone="13900000002",
        dealer_id=dealer.pk,
        username="gz_manager",
        password="Dealer-pass-2026",
    )
    assert manager.user.check_password("Dealer-pass-2026")
    entry = AuditEntry.objects.filter(object_type="commerce.channelstaff").latest("id")
    assert "Dealer-pass-2026" not in str(entry.after)
    assert manager.user.password not in str(entry.after)


def test_channel_staff_checks() -> None:
    dealer = _dealer()
    store = _store(dealer)
    add = channel.add_channel_staff
    _refused("invalid_channel_role", add, role="owner", phone="13900000003", store_id=store.pk)
    _refused("channel_staff_employer_mismatch", add, role="store_clerk", phone="13900000003", dealer_id=dealer.pk)
    _refused(
        "channel_staff_employer_mismatch",
        add,
        role="dealer_clerk",
        phone="13900000003",
        dealer_id=dealer.pk,
        store_id=store.pk,
    )
    _refused("unknown_store", add, role="store_clerk", phone="13900000003", store_id=10**9)
    _refused("unknown_dealer", add, role="dealer_clerk", phone="13900000003", dealer_id=10**9)
    _refused("invalid_phone", add, role="store_clerk", phone="", store_id=store.pk)
    _refused("invalid_phone", add, role="store_clerk", phone="phone", store_id=store.pk)
    _refused("invalid_username", add, role="store_clerk", phone="13900000003", store_id=store.pk, username="a b")
    _refused("username_taken", add, role="store_clerk", phone="13900000003", store_id=store.pk, username="owner")
    _refused("invalid_password", add, role="store_clerk", phone="13900000003", store_id=store.pk, password="123")
    add(role="store_clerk", phone="13900000003", store_id=store.pk)
    _refused("phone_taken", add, role="store_owner", phone="13900000003", store_id=store.pk, username="other")
    channel.suspend_store(store.pk)
    _refused("store_suspended", add, role="store_clerk", phone="13900000004", store_id=store.pk)
    channel.suspend_dealer(dealer.pk)
    _refused("dealer_suspended", add, role="dealer_clerk", phone="13900000004", dealer_id=dealer.pk)


def test_the_database_ties_a_role_to_one_employer() -> None:
    dealer = _dealer()
    user = User.objects.create(username="loose", is_staff=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChannelStaff.objects.create(user=user, role="store_clerk", dealer=dealer, phone="1")
    with pytest.raises(IntegrityError), transaction.atomic():
        ChannelStaff.objects.create(user=user, role="dealer_clerk", phone="1")


def test_deactivating_channel_staff_locks_the_account_and_frees_the_phone() -> None:
    store = _store(_dealer())
    clerk = channel.add_channel_staff(
        role="store_clerk", phone="13900000005", store_id=store.pk, password="Clerk-pass-2026"
    )
    since = last_audit_id()
    channel.deactivate_channel_staff(clerk.pk)
    channel.deactivate_channel_staff(clerk.pk)
    clerk.refresh_from_db()
    clerk.user.refresh_from_db()
    assert not clerk.is_active
    assert not clerk.user.is_active
    (entry,) = audit_since(since)
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})
    assert selectors.channel_staff_of(clerk.user) is None
    again = channel.add_channel_staff(role="store_clerk", phone="13900000005", store_id=store.pk)
    assert again.is_active
    assert again.user.username == "13900000005-2"  # the old account keeps its name
    _refused("channel_staff_not_found", channel.deactivate_channel_staff, 10**9)


def test_channel_staff_do_not_count_against_the_staff_quota(alpha: Brand) -> None:
    store = _store(_dealer())
    _on_plan(alpha, max_staff=User.objects.filter(is_active=True, is_staff=True).count() + 1)
    for n in range(3):
        channel.add_channel_staff(role="store_clerk", phone=f"1390000001{n}", store_id=store.pk)
    check_staff_quota()  # one brand staff seat is still free
    with pytest.raises(JiumaError):
        check_staff_quota(adding=2)


# --- roles --------------------------------------------------------------------------------------------


def _group_perms(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


CHANNEL_MODELS = ("dealer", "dealerarea", "store", "channelstaff")


def _model_perms(*actions: str) -> set[str]:
    return {f"commerce.{action}_{model}" for model in CHANNEL_MODELS for action in actions}


def test_the_brand_roles_on_the_channel() -> None:
    every = _model_perms("add", "change", "delete", "view")
    assert every <= _group_perms("owner")
    assert every <= _group_perms("operator")
    for role in ("warehouse", "finance", "customer_service"):
        perms = _group_perms(role)
        assert _model_perms("view") <= perms, role
        assert not (_model_perms("add", "change", "delete") & perms), role


@pytest.mark.parametrize(
    ("role", "side", "manages"),
    [
        ("dealer_manager", "dealer", True),
        ("dealer_clerk", "dealer", False),
        ("store_owner", "store", True),
        ("store_clerk", "store", False),
    ],
)
def test_the_channel_roles_hold_only_their_sides_terminal_permissions(role: str, side: str, manages: bool) -> None:
    perms = _group_perms(role)
    assert f"commerce.{side}_use_terminal" in perms
    assert (f"commerce.{side}_manage_staff" in perms) is manages
    for perm in perms:
        app, codename = perm.split(".")
        assert app in ("commerce", "codes", "rewards", "custom_liquor", "banquet", "cellar_storage"), perm
        assert codename.startswith(f"{side}_"), perm  # no model rights, nothing of the other side
        assert manages or f"{side}_manage_" not in codename, perm
