"""The channel in the brand console's admin: pages load, the dealer's areas inline validates and
shows full region names, stores filter by dealer/region/status, adds and changes are audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from commerce.models import ChannelStaff, Dealer, DealerArea, Store
from commerce.services import channel
from tenants.brand.models import AuditEntry, User
from tests.commerce.conftest import GUIYANG, NANMING, YUNYAN, ZUNYI
from tests.conftest import Brand

ADMIN = "/admin/commerce"


def _setup(brand: Brand) -> dict[str, int]:
    with schema_context(brand.schema):
        dealer = channel.create_dealer(code="GY-01", name="贵阳经销商", areas=[GUIYANG])
        zunyi = channel.create_dealer(code="ZY-01", name="遵义经销商", areas=[ZUNYI])
        store = channel.create_store(code="S-001", name="南明门店", dealer_id=dealer.pk, region_code=NANMING)
        channel.create_store(code="S-002", name="红花岗门店", dealer_id=zunyi.pk, region_code="520302")
        clerk = channel.add_channel_staff(role="store_clerk", phone="13900000001", store_id=store.pk)
    return {"dealer": dealer.pk, "zunyi": zunyi.pk, "store": store.pk, "clerk": clerk.pk}


def _dealer_form(**fields: Any) -> dict[str, Any]:
    """The add/change form of a dealer with the areas inline ("areas" prefix)."""
    areas = fields.pop("areas", [])
    existing = fields.pop("existing", [])  # (area id, region code, delete?)
    data: dict[str, Any] = {
        "code": "NEW-01",
        "name": "新经销商",
        "contact_name": "",
        "contact_phone": "",
        "level": "1",
        "parent": "",
        "areas-TOTAL_FORMS": str(len(existing) + len(areas)),
        "areas-INITIAL_FORMS": str(len(existing)),
        "areas-MIN_NUM_FORMS": "0",
        "areas-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for i, (area_id, code, delete) in enumerate(existing):
        data[f"areas-{i}-id"] = str(area_id)
        data[f"areas-{i}-region_code"] = code
        if delete:
            data[f"areas-{i}-DELETE"] = "on"
    for i, code in enumerate(areas, start=len(existing)):
        data[f"areas-{i}-region_code"] = code
    return data


def test_the_owner_opens_every_channel_page(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    index = owner.get("/admin/").content.decode()
    for model in ("dealer", "store", "channelstaff"):
        assert f"{ADMIN}/{model}/" in index
    pages = {
        f"{ADMIN}/dealer/": "贵阳经销商",
        f"{ADMIN}/dealer/add/": "授权区域",
        f"{ADMIN}/dealer/{ids['dealer']}/change/": "贵州省贵阳市",
        f"{ADMIN}/store/": "贵州省贵阳市南明区",
        f"{ADMIN}/store/add/": "门店编码",
        f"{ADMIN}/store/{ids['store']}/change/": "贵州省贵阳市南明区",
        f"{ADMIN}/channelstaff/": "13900000001",
        f"{ADMIN}/channelstaff/add/": "手机号",
        f"{ADMIN}/channelstaff/{ids['clerk']}/change/": "门店店员",
        f"{ADMIN}/dealer/?q=遵义": "遵义经销商",
        f"{ADMIN}/store/?q=南明": "南明门店",
    }
    for path, text in pages.items():
        response = owner.get(path)
        assert response.status_code == 200, path
        assert text in response.content.decode(), path


def test_adding_a_dealer_with_areas_in_the_admin_is_audited(alpha: Brand) -> None:
    owner = alpha.client("owner")
    response = owner.post(f"{ADMIN}/dealer/add/", _dealer_form(code="new-01", areas=[NANMING, ZUNYI]))
    assert response.status_code == 302, response.content.decode()[-3000:]
    with schema_context(alpha.schema):
        dealer = Dealer.objects.get(code="NEW-01")
        assert sorted(DealerArea.objects.filter(dealer=dealer).values_list("region_code", flat=True)) == [
            NANMING,
            ZUNYI,
        ]
        entries = list(
            AuditEntry.objects.filter(object_type="commerce.dealer", object_id=str(dealer.pk)).order_by("id")
        )
    assert [(e.action, e.via) for e in entries] == [("create", "admin"), ("update", "admin")]
    assert entries[1].before == {"areas": []}
    assert entries[1].after == {"areas": [NANMING, ZUNYI]}
    page = owner.get(f"{ADMIN}/dealer/{dealer.pk}/change/").content.decode()
    assert "贵州省贵阳市南明区" in page
    assert "贵州省遵义市" in page


@pytest.mark.parametrize(
    ("areas", "message"),
    [
        (["999999"], "行政区划代码 999999 不存在"),
        (["52010"], "应为 6 位数字"),
        (["520000", NANMING], "已包含在"),
    ],
)
def test_the_areas_inline_refuses_bad_regions(alpha: Brand, areas: list[str], message: str) -> None:
    response = alpha.client("owner").post(f"{ADMIN}/dealer/add/", _dealer_form(areas=areas))
    assert response.status_code == 200, "the form is shown again"
    assert message in response.content.decode()
    with schema_context(alpha.schema):
        assert not Dealer.objects.filter(code="NEW-01").exists()
        assert not DealerArea.objects.exists()


def test_changing_areas_in_the_admin_keeps_the_stores_inside(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    with schema_context(alpha.schema):
        area = DealerArea.objects.get(dealer_id=ids["dealer"])
    form = _dealer_form(code="GY-01", name="贵阳经销商", existing=[(area.pk, GUIYANG, True)], areas=[YUNYAN])
    response = owner.post(f"{ADMIN}/dealer/{ids['dealer']}/change/", form)
    assert response.status_code == 200
    assert "S-001" in response.content.decode()
    form = _dealer_form(code="GY-01", name="贵阳经销商", existing=[(area.pk, GUIYANG, True)], areas=[NANMING, YUNYAN])
    assert owner.post(f"{ADMIN}/dealer/{ids['dealer']}/change/", form).status_code == 302
    with schema_context(alpha.schema):
        assert sorted(DealerArea.objects.filter(dealer_id=ids["dealer"]).values_list("region_code", flat=True)) == [
            NANMING,
            YUNYAN,
        ]
        entry = AuditEntry.objects.filter(object_type="commerce.dealer", detail="设置授权区域").latest("id")
    assert (entry.before, entry.after) == ({"areas": [GUIYANG]}, {"areas": [NANMING, YUNYAN]})


def test_the_admin_refuses_a_second_level_dealer_as_parent(alpha: Brand) -> None:
    ids = _setup(alpha)
    with schema_context(alpha.schema):
        sub = channel.create_dealer(code="GY-02", name="二级", level=2, parent_id=ids["dealer"])
    owner = alpha.client("owner")
    response = owner.post(f"{ADMIN}/dealer/add/", _dealer_form(level="2", parent=str(sub.pk)))
    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    response = owner.post(f"{ADMIN}/dealer/add/", _dealer_form(level="2"))
    assert "须指定上级经销商" in response.content.decode()
    response = owner.post(f"{ADMIN}/dealer/add/", _dealer_form(level="2", parent=str(ids["dealer"]), areas=[ZUNYI]))
    assert "上级经销商的授权区域内" in response.content.decode()
    with schema_context(alpha.schema):
        assert not Dealer.objects.filter(code="NEW-01").exists()


def test_stores_filter_by_dealer_region_and_status(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")

    def listed(query: str) -> set[str]:
        response = owner.get(f"{ADMIN}/store/?{query}")
        assert response.status_code == 200, query
        return {store.code for store in response.context["cl"].result_list}

    assert listed("") == {"S-001", "S-002"}
    assert listed(f"dealer__id__exact={ids['zunyi']}") == {"S-002"}
    assert listed("region=520000") == {"S-001", "S-002"}
    assert listed(f"region={GUIYANG}") == {"S-001"}
    assert listed("status__exact=suspended") == set()
    page = owner.get(f"{ADMIN}/store/?region=520000").content.decode()
    assert "贵州省 · 贵阳市" in page  # a chosen province offers its cities


def test_adding_a_store_in_the_admin_is_checked_and_audited(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    form = {
        "code": "s-003",
        "name": "云岩门店",
        "dealer": str(ids["dealer"]),
        "region_code": ZUNYI,
        "address": "",
        "latitude": "",
        "longitude": "",
        "contact_name": "",
        "contact_phone": "",
    }
    response = owner.post(f"{ADMIN}/store/add/", form)
    assert response.status_code == 200
    assert "不在经销商" in response.content.decode()
    response = owner.post(f"{ADMIN}/store/add/", {**form, "region_code": YUNYAN})
    assert response.status_code == 302
    with schema_context(alpha.schema):
        store = Store.objects.get(code="S-003")
        entry = AuditEntry.objects.filter(object_type="commerce.store").latest("id")
    assert (entry.action, entry.object_id, entry.via) == ("create", str(store.pk), "admin")
    assert store.qr_token not in str(entry.after)


def test_adding_channel_staff_in_the_admin_creates_a_non_staff_account(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    form = {
        "role": "store_owner",
        "dealer": "",
        "store": str(ids["store"]),
        "phone": "13900000002",
        "display_name": "王老板",
        "username": "",
        "password": "",
    }
    refused = owner.post(f"{ADMIN}/channelstaff/add/", {**form, "dealer": str(ids["dealer"])})
    assert refused.status_code == 200
    assert "门店人员须指定所属门店" in refused.content.decode()
    response = owner.post(f"{ADMIN}/channelstaff/add/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    with schema_context(alpha.schema):
        staff = ChannelStaff.objects.select_related("user").get(phone="13900000002")
        assert response["Location"] == f"{ADMIN}/channelstaff/"
        assert staff.user.display_name == "王老板"
        assert not staff.user.is_staff
        assert AuditEntry.objects.filter(object_type="commerce.channelstaff", object_id=str(staff.pk)).count() == 1


def test_admin_actions_suspend_through_the_services(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    response = owner.post(f"{ADMIN}/dealer/", {"action": "suspend", "_selected_action": [str(ids["zunyi"])]})
    assert response.status_code == 302
    response = owner.post(f"{ADMIN}/channelstaff/", {"action": "deactivate", "_selected_action": [str(ids["clerk"])]})
    assert response.status_code == 302
    with schema_context(alpha.schema):
        assert Dealer.objects.get(pk=ids["zunyi"]).status == "suspended"
        assert not User.objects.get(channel_staff__pk=ids["clerk"]).is_active
        assert AuditEntry.objects.filter(detail__in=["停用经销商", "停用渠道人员"], via="admin").count() == 2


@pytest.mark.parametrize("role", ["warehouse", "finance", "customer_service"])
def test_the_other_roles_see_the_channel_in_the_admin_but_change_nothing(alpha: Brand, role: str) -> None:
    ids = _setup(alpha)
    client: Client = alpha.client(role)
    assert client.get(f"{ADMIN}/dealer/").status_code == 200
    store_page = client.get(f"{ADMIN}/store/{ids['store']}/change/")
    assert store_page.status_code == 200
    with schema_context(alpha.schema):
        token = Store.objects.get(pk=ids["store"]).qr_token
    assert token not in store_page.content.decode()
    assert client.get(f"{ADMIN}/dealer/add/").status_code == 403
    assert client.get(f"{ADMIN}/channelstaff/add/").status_code == 403
    response = client.post(f"{ADMIN}/dealer/", {"action": "suspend", "_selected_action": [str(ids["zunyi"])]})
    assert response.status_code in (200, 302, 403)
    with schema_context(alpha.schema):
        assert Dealer.objects.get(pk=ids["zunyi"]).status == "active"
