"""Members, points and WeChat settings in the brand console's admin."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from commerce.models import Member, PointsEntry, PointsKind, WeChatConfig
from commerce.services import points
from commerce.wechat import config
from tenants.brand.models import AuditEntry
from tests.conftest import Brand

ADMIN = "/admin/commerce"


def test_members_are_read_in_the_console_and_points_are_adjusted_with_a_reason(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        member = Member.objects.create(openid="o-admin", nickname="张三", phone_hint="138****8000")
        points.credit(member.pk, 50, kind=PointsKind.SCAN, source="scan:1")
    owner = alpha.client("owner")
    listing = owner.get(f"{ADMIN}/member/").content.decode()
    assert "张三" in listing
    assert "138****8000" in listing
    page = owner.get(f"{ADMIN}/member/{member.pk}/change/")
    assert page.status_code == 200
    assert "data-points-adjustment" in page.content.decode()
    assert owner.get(f"{ADMIN}/member/add/").status_code == 403
    taken = owner.post(
        f"{ADMIN}/member/{member.pk}/change/", {"adjust_points": "1", "amount": "-20", "reason": "重复发放"}
    )
    assert taken.status_code == 302
    too_much = owner.post(f"{ADMIN}/member/{member.pk}/change/", {"adjust_points": "1", "amount": "-31", "reason": "x"})
    assert too_much.status_code == 302
    with tenant_context(alpha.tenant):
        member.refresh_from_db()
        assert member.points_balance == 30
        adjustment = PointsEntry.objects.get(member=member, kind=PointsKind.ADJUSTMENT)
        assert (adjustment.amount, adjustment.note, adjustment.created_by) == (-20, "重复发放", "owner")
        assert AuditEntry.objects.filter(object_type="commerce.member", object_id=str(member.pk)).count() == 1
    # The ledger is read-only.
    assert owner.get(f"{ADMIN}/pointsentry/").status_code == 200
    assert owner.get(f"{ADMIN}/pointsentry/add/").status_code == 403
    assert owner.post(f"{ADMIN}/pointsentry/{adjustment.pk}/delete/", {"post": "yes"}).status_code == 403


def test_customer_service_cannot_adjust_points(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        member = Member.objects.create(openid="o-cs")
    service = alpha.client("customer_service")
    page = service.get(f"{ADMIN}/member/{member.pk}/change/")
    assert page.status_code == 200
    assert "data-points-adjustment" not in page.content.decode()
    service.post(f"{ADMIN}/member/{member.pk}/change/", {"adjust_points": "1", "amount": "100", "reason": "送"})
    with tenant_context(alpha.tenant):
        assert not PointsEntry.objects.filter(member=member).exists()


def test_wechat_secrets_are_write_only_and_kept_when_left_empty(alpha: Brand) -> None:
    owner = alpha.client("owner")
    form = {
        "appid": "wx1234567890abcdef",
        "oauth_scope": "snsapi_base",
        "secret": "first-secret",
        "mchid": "",
        "merchant_serial_no": "",
        "private_key": "",
        "apiv3_key": "",
        "platform_public_key_id": "",
        "platform_public_key": "",
        "transfer_scene_id": "1000",
    }
    assert owner.post(f"{ADMIN}/wechatconfig/add/", form).status_code == 302
    page = owner.get(f"{ADMIN}/wechatconfig/1/change/").content.decode()
    assert "first-secret" not in page
    assert (
        owner.post(
            f"{ADMIN}/wechatconfig/1/change/", {**form, "secret": "", "oauth_scope": "snsapi_userinfo"}
        ).status_code
        == 302
    )
    with tenant_context(alpha.tenant):
        config.forget()
        loaded = config.load()
        assert loaded is not None
        assert (loaded.secret, loaded.oauth_scope) == ("first-secret", "snsapi_userinfo")
        stored = WeChatConfig.objects.get()
        assert b"first-secret" not in bytes(stored.secret_wrapped)
