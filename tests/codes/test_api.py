"""The codes API: batches for staff by role, the package password once, limited downloads, and
association uploads from machines with scoped, revocable API keys."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring
from codes.models import Batch, CodeLink, SerialGroup
from tenants.brand import api_keys
from tenants.brand.models import ApiKey, AuditEntry
from tests.conftest import Brand

BATCHES = "/api/v1/codes/batches/"
ASSOCIATIONS = "/api/v1/codes/associations/"


@pytest.fixture(autouse=True)
def _fresh_keys() -> None:
    keyring.clear()


def _create(client: Client, **fields: Any) -> Any:
    return client.post(BATCHES, {"bottles": 12, "bottles_per_case": 6} | fields, content_type="application/json")


def test_operators_create_batches_and_finance_may_not(alpha: Brand) -> None:
    made = _create(alpha.client("operator"))
    assert made.status_code == 201, made.content
    assert made.json()["cases"] == 2
    assert made.json()["status"] == "generating"
    refused = _create(alpha.client("finance"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert _create(alpha.client()).status_code in (401, 403)


def test_bad_batch_input_is_a_400_naming_the_field(alpha: Brand) -> None:
    for body, field in (({"bottles": 0}, "bottles"), ({"bogus": 1}, "bogus"), ({"max_downloads": 99}, "max_downloads")):
        response = _create(alpha.client("owner"), **body)
        assert response.status_code == 400, response.content
        assert field in response.json()["fields"]


def test_the_password_is_returned_once_and_downloads_stop_at_the_limit(alpha: Brand) -> None:
    owner = alpha.client("owner")
    batch_id = _create(owner, max_downloads=1).json()["id"]
    with tenant_context(alpha.tenant):
        services.generate_package(batch_id)
    detail = owner.get(f"{BATCHES}{batch_id}/").json()
    assert detail["status"] == "ready"
    assert detail["password_available"] is True
    first = owner.post(f"{BATCHES}{batch_id}/password/")
    assert first.status_code == 200
    assert len(first.json()["password"]) == 20
    assert first["Cache-Control"] == "no-store"
    again = owner.post(f"{BATCHES}{batch_id}/password/")
    assert again.status_code == 409
    assert again.json()["code"] == "package_password_already_shown"

    download = owner.get(f"{BATCHES}{batch_id}/download/", REMOTE_ADDR="198.51.100.4")
    assert download.status_code == 200
    assert b"".join(download.streaming_content)[:2] == b"PK"
    assert owner.get(f"{BATCHES}{batch_id}/download/").json()["code"] == "downloads_exhausted"
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.filter(action="download", object_id=str(batch_id)).get()
        assert entry.ip == "198.51.100.4"
        assert entry.actor_name == "owner"


def test_the_owner_issues_a_scoped_key_shown_once_and_stored_only_hashed(alpha: Brand) -> None:
    owner = alpha.client("owner")
    issued = owner.post(
        "/api/v1/api-keys/", {"name": "3号包装线", "scopes": ["associations:write"]}, content_type="application/json"
    )
    assert issued.status_code == 201, issued.content
    raw = issued.json()["key"]
    assert raw.startswith("jmk_")
    listed = owner.get("/api/v1/api-keys/").content.decode()
    assert raw not in listed
    with tenant_context(alpha.tenant):
        assert not ApiKey.objects.filter(key_hash=raw).exists()
    refused = alpha.client("operator").post(
        "/api/v1/api-keys/", {"name": "x", "scopes": ["associations:write"]}, content_type="application/json"
    )
    assert refused.status_code == 403
    bad = owner.post("/api/v1/api-keys/", {"name": "x", "scopes": ["root"]}, content_type="application/json")
    assert bad.status_code == 400


def _key(brand: Brand, *scopes: str) -> str:
    with tenant_context(brand.tenant):
        return api_keys.issue("包装线", list(scopes)).raw


def _association_file(brand: Brand) -> tuple[Batch, bytes]:
    with tenant_context(brand.tenant):
        batch = services.create_batch(services.BatchRequest(bottles=6, bottles_per_case=6))
        key = keyring.current_key(brand.tenant.number)
    case = code_format.make(key, code_format.Kind.CASE, batch.first_case_serial)
    bottles = [code_format.make(key, code_format.Kind.OUTER, batch.first_bottle_serial + i) for i in range(6)]
    return batch, ("parent,child\n" + "".join(f"{case},{bottle}\n" for bottle in bottles)).encode()


def _upload(brand: Brand, content: bytes, **headers: str) -> Any:
    client = Client(HTTP_HOST=brand.host, **headers)
    return client.post(ASSOCIATIONS, {"file": SimpleUploadedFile("line.csv", content, "text/csv")})


def test_a_packing_line_uploads_associations_with_its_key(alpha: Brand) -> None:
    raw = _key(alpha, "associations:write")
    batch, content = _association_file(alpha)
    response = _upload(alpha, content, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 201, response.content
    assert response.json()["linked"] == 6
    assert response.json()["source"].startswith("apikey:")
    again = _upload(alpha, content, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert again.status_code == 200
    assert again.json()["repeated"] is True
    with tenant_context(alpha.tenant):
        assert (
            CodeLink.objects.filter(parent_serial=batch.first_case_serial, parent_group=SerialGroup.CASE).count() == 6
        )
        assert AuditEntry.objects.filter(actor_name="apikey:包装线", object_type="codes.associationupload").exists()


def test_a_rejected_file_is_a_400_with_the_line_report(alpha: Brand) -> None:
    raw = _key(alpha, "associations:write")
    response = _upload(alpha, b"parent,child\nnot,codes\n", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "association_rejected"
    assert body["report"][0]["status"] == "malformed"
    assert "整份文件未生效" in body["message"]


def test_keys_without_the_scope_revoked_or_from_another_brand_get_nothing(alpha: Brand, beta: Brand) -> None:
    _, content = _association_file(alpha)
    wrong_scope = _key(alpha, "batches:read")
    assert _upload(alpha, content, HTTP_AUTHORIZATION=f"Bearer {wrong_scope}").status_code == 403
    revoked = _key(alpha, "associations:write")
    with tenant_context(alpha.tenant):
        api_keys.revoke(ApiKey.objects.get(key_hint=revoked[:10]).pk)
    assert _upload(alpha, content, HTTP_AUTHORIZATION=f"Bearer {revoked}").status_code == 401
    betas = _key(beta, "associations:write")
    assert _upload(alpha, content, HTTP_AUTHORIZATION=f"Bearer {betas}").status_code == 401
    assert _upload(alpha, content, HTTP_AUTHORIZATION="Bearer jmk_made_up").status_code == 401
    # A key never reaches staff endpoints, whatever its scopes.
    reader = _key(alpha, "batches:read")
    client = Client(HTTP_HOST=alpha.host, HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert client.get(BATCHES).status_code == 200
    assert client.post(BATCHES, {"bottles": 1}, content_type="application/json").status_code == 403
    assert client.get("/api/v1/staff/").status_code in (401, 403)


def test_one_code_is_blacklisted_by_its_printed_form_with_a_reason(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        batch = services.create_batch(services.BatchRequest(bottles=3))
        code = code_format.make(
            keyring.current_key(alpha.tenant.number), code_format.Kind.OUTER, batch.first_bottle_serial + 1
        )
    owner = alpha.client("owner")
    url = "/api/v1/codes/status/code/"
    no_reason = owner.post(url, {"code": code, "status": "blacklisted"}, content_type="application/json")
    assert no_reason.status_code == 400
    done = owner.post(
        url,
        {"code": services.url_prefix() + code, "status": "blacklisted", "reason": "举报假酒"},
        content_type="application/json",
    )
    assert done.status_code == 201, done.content
    assert done.json()["serial"] == batch.first_bottle_serial + 1
    with tenant_context(alpha.tenant):
        assert services.status_of(SerialGroup.BOTTLE, batch.first_bottle_serial + 1) == "blacklisted"
        assert services.status_of(SerialGroup.BOTTLE, batch.first_bottle_serial) is None
    forged = owner.post(url, {"code": "0" * 24, "status": "void"}, content_type="application/json")
    assert forged.status_code == 400
    assert (
        alpha.client("finance").post(url, {"code": code, "status": "void"}, content_type="application/json").status_code
        == 403
    )
