"""The codes pages of the brand console: they load for the roles that may see them, and their
actions go through the services (batches, password once, download, associations, alerts, trace)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring
from codes.models import AssociationUpload, Batch
from tests.conftest import Brand


@pytest.fixture(autouse=True)
def _fresh() -> None:
    keyring.clear()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/codes/batch/",
        "/admin/codes/batch/add/",
        "/admin/codes/associationupload/",
        "/admin/codes/associationupload/upload/",
        "/admin/codes/movement/",
        "/admin/codes/diversionalert/",
        "/admin/codes/scan/",
        "/admin/codes/statusrule/",
        "/admin/codes/trace/",
    ],
)
def test_codes_pages_load_for_the_owner(alpha: Brand, path: str) -> None:
    response = alpha.client("owner").get(path)
    assert response.status_code == 200, response.content[:500]


def test_a_batch_is_created_in_the_admin_through_the_service(alpha: Brand) -> None:
    owner = alpha.client("owner")
    response = owner.post(
        "/admin/codes/batch/add/",
        {
            "bottles": 12,
            "has_inner": "on",
            "has_outer": "on",
            "bottles_per_case": 6,
            "cases_per_pallet": 0,
            "max_downloads": 2,
        },
    )
    assert response.status_code == 302, response.content[:1000]
    with tenant_context(alpha.tenant):
        batch = Batch.objects.get()
        assert batch.cases == 2
        assert batch.number.startswith("B")
        services.generate_package(batch.pk)
    page = owner.get(f"/admin/codes/batch/{batch.pk}/change/").content.decode()
    assert "查看解压密码" in page
    shown = owner.get(f"/admin/codes/batch/{batch.pk}/password/", follow=True).content.decode()
    assert "仅显示这一次" in shown
    again = owner.get(f"/admin/codes/batch/{batch.pk}/password/", follow=True).content.decode()
    assert "不能再次查看" in again
    download = owner.get(f"/admin/codes/batch/{batch.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")


def test_finance_cannot_download_or_create(alpha: Brand) -> None:
    finance = alpha.client("finance")
    assert finance.get("/admin/codes/batch/add/").status_code == 403


def test_association_upload_page_reports_errors(alpha: Brand) -> None:
    owner = alpha.client("owner")
    bad = SimpleUploadedFile("bad.csv", b"parent,child\nnot,codes\n", "text/csv")
    response = owner.post("/admin/codes/associationupload/upload/", {"file": bad}, follow=True)
    assert "整份文件未生效" in response.content.decode()
    with tenant_context(alpha.tenant):
        assert AssociationUpload.objects.get().applied is False


def test_the_trace_page_shows_a_codes_chain(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        batch = services.create_batch(services.BatchRequest(bottles=6, bottles_per_case=6))
        code = code_format.make(
            keyring.current_key(alpha.tenant.number), code_format.Kind.OUTER, batch.first_bottle_serial
        )
    page = alpha.client("owner").get("/admin/codes/trace/", {"code": code}).content.decode()
    assert batch.number in page
    assert "未激活" in page
    junk = alpha.client("owner").get("/admin/codes/trace/", {"code": "junk"}).content.decode()
    assert "不是本品牌的有效码" in junk
