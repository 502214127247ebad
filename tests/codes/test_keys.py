"""Brands' code keys: issued at onboarding, wrapped under the master key, rotated, verified without queries."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from codes import format as f
from codes.keyring import keyring, verify
from tenants import code_keys, keys
from tenants.errors import JiumaError
from tenants.models import CodeSecret, Tenant
from tests.conftest import Brand
from tests.support.threads import run_concurrently


@pytest.fixture(autouse=True)
def _fresh_keyring() -> Iterator[None]:
    keyring.clear()
    yield
    keyring.clear()
    keys.master_key_ring.cache_clear()


def _current_code(brand: Brand, kind: f.Kind = f.Kind.INNER, serial: int = 1) -> str:
    return f.make(keyring.current_key(brand.tenant.number), kind, serial)


def test_each_brand_gets_a_distinct_number_and_a_first_key_at_onboarding(alpha: Brand, beta: Brand) -> None:
    assert alpha.tenant.number != beta.tenant.number
    assert 1 <= alpha.tenant.number <= f.MAX_TENANT_NUMBER
    for brand in (alpha, beta):
        (secret,) = CodeSecret.objects.filter(tenant=brand.tenant, version=1)
        assert secret.retired_at is None


def test_secrets_are_stored_wrapped_and_bound_to_their_brand_and_version(alpha: Brand, beta: Brand) -> None:
    row = CodeSecret.objects.get(tenant=alpha.tenant, version=1)
    (plain,) = [s for s in code_keys.load_secrets(alpha.tenant.number) if s.version == 1]
    assert plain.secret not in bytes(row.wrapped)
    ring = keys.master_key_ring()
    with pytest.raises(keys.KeyUnavailable):
        ring.unwrap(row.master_key_id, bytes(row.wrapped), keys.secret_context(beta.tenant.number, 1))
    with pytest.raises(keys.KeyUnavailable):
        ring.unwrap(row.master_key_id, bytes(row.wrapped), keys.secret_context(alpha.tenant.number, 2))
    tampered = bytearray(row.wrapped)
    tampered[-1] ^= 1
    with pytest.raises(keys.KeyUnavailable):
        ring.unwrap(row.master_key_id, bytes(tampered), keys.secret_context(alpha.tenant.number, 1))


def test_a_code_verifies_for_its_brand_only(alpha: Brand, beta: Brand) -> None:
    code = _current_code(alpha, f.Kind.OUTER, 55)
    assert verify(code).serial == 55
    assert verify(code, tenant_number=alpha.tenant.number).kind == f.Kind.OUTER
    with pytest.raises(f.InvalidCode):
        verify(code, tenant_number=beta.tenant.number)
    # beta's own key does not take alpha's code either (rewriting the clear prefix to beta's).
    beta_key = keyring.current_key(beta.tenant.number)
    value = f.decode_value(code)
    _, _, sealed, tag = f.split(value)
    moved = f.encode_value((((beta_key._prefix << f.SEALED_BITS) | sealed) << f.TAG_BITS) | tag)
    with pytest.raises(f.InvalidCode):
        verify(moved)


def test_verifying_costs_no_query_once_warm_and_forged_codes_never_cost_one(alpha: Brand) -> None:
    genuine = _current_code(alpha, f.Kind.INNER, 7)
    forged_same_brand = genuine[:4] + ("0" * 20 if genuine[4:] != "0" * 20 else "1" * 20)
    unknown_brand = f.encode_value((60_000 << 100) | (1 << 96) | 12345)
    # Warm: the first code of an unknown brand loads the list of brand numbers (one query per
    # process and KEYRING_REFRESH_SECONDS), the first genuine one its brand's keys.
    with CaptureQueriesContext(connection) as warming:
        verify(genuine)
        with pytest.raises(f.InvalidCode):
            verify(unknown_brand)
    assert len(warming.captured_queries) == 1
    with CaptureQueriesContext(connection) as captured:
        for _ in range(100):
            assert verify(genuine).serial == 7
            for forged in (forged_same_brand, unknown_brand, "not a code", genuine[:-1]):
                with pytest.raises(f.InvalidCode):
                    verify(forged)
    assert captured.captured_queries == []


def test_a_flood_of_unknown_key_versions_costs_at_most_one_reload(alpha: Brand) -> None:
    genuine = _current_code(alpha)
    verify(genuine)
    number = alpha.tenant.number
    with CaptureQueriesContext(connection) as captured:
        for version in range(2, 16):
            forged = f.encode_value((((number << 4) | version) << 100) | 999)
            with pytest.raises(f.InvalidCode):
                verify(forged)
    assert captured.captured_queries == []  # alpha's keys were loaded moments ago: no reload yet


def test_rotation_makes_new_batches_use_the_new_key_while_old_codes_keep_verifying(alpha: Brand) -> None:
    old = _current_code(alpha, f.Kind.INNER, 100)
    created = code_keys.rotate(alpha.tenant)
    assert created.version == 2
    current = keyring.current_key(alpha.tenant.number)
    assert current.version == 2
    new = f.make(current, f.Kind.INNER, 100)
    assert new != old
    assert verify(old).serial == verify(new).serial == 100

    code_keys.retire(alpha.tenant, 1)
    assert keyring.current_key(alpha.tenant.number).version == 2
    assert verify(old).serial == 100  # retired: no new batches, old codes still good
    with pytest.raises(JiumaError) as refused:
        code_keys.retire(alpha.tenant, 2)
    assert refused.value.status_code == 409


def test_a_brand_has_at_most_fifteen_key_versions(alpha: Brand) -> None:
    for _ in range(14):
        code_keys.issue_secret(alpha.tenant)
    with pytest.raises(JiumaError) as refused:
        code_keys.issue_secret(alpha.tenant)
    assert refused.value.code == "code_key_versions_exhausted"
    assert refused.value.status_code == 409


def test_rotating_the_master_key_rewraps_every_secret_and_codes_still_verify(alpha: Brand, settings: Any) -> None:
    code = _current_code(alpha, f.Kind.CASE, 3)
    new_master = base64.b64encode(bytes(range(100, 132))).decode()
    settings.JIUMA_MASTER_KEYS = f"new:{new_master},{settings.JIUMA_MASTER_KEYS}"
    keys.master_key_ring.cache_clear()
    assert code_keys.rewrap_all() >= 2
    assert set(CodeSecret.objects.values_list("master_key_id", flat=True)) == {"new"}
    settings.JIUMA_MASTER_KEYS = f"new:{new_master}"  # the old master key is gone
    keys.master_key_ring.cache_clear()
    keyring.clear()
    assert verify(code).serial == 3


def test_brands_created_before_code_keys_get_one_on_first_use(alpha: Brand) -> None:
    CodeSecret.objects.filter(tenant=alpha.tenant).delete()
    keyring.clear()
    code = _current_code(alpha)
    assert verify(code).kind == f.Kind.INNER
    assert CodeSecret.objects.filter(tenant=alpha.tenant).count() == 1


def test_production_without_a_master_key_refuses_to_run(settings: Any) -> None:
    settings.JIUMA_MASTER_KEYS = ""
    settings.JIUMA_MASTER_KEY_RING = ""
    settings.JIUMA_ENV = "production"
    keys.master_key_ring.cache_clear()
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        keys.master_key_ring()


def test_concurrent_rotations_get_distinct_versions(db: None) -> None:
    """Two rotations at once: the brand row lock serialises them (versions 2 and 3, no error)."""

    def make_brand() -> Tenant:
        plan_id = Tenant.objects.values_list("plan_id", flat=True).first()
        tenant = Tenant.objects.create(code="keyrace", name="并发酒业", plan_id=plan_id, schema_name="t_keyrace")
        code_keys.issue_secret(tenant)
        return tenant

    (tenant,) = run_concurrently([make_brand])
    assert isinstance(tenant, Tenant), tenant
    try:
        outcomes = run_concurrently([lambda: code_keys.issue_secret(tenant).version for _ in range(2)])
        assert sorted(outcomes) == [2, 3], outcomes
    finally:
        run_concurrently([lambda: Tenant.objects.filter(pk=tenant.pk).delete()])


def test_ops_list_and_rotate_code_keys_without_ever_seeing_a_secret(
    alpha: Brand, ops_client: Any, support_client: Any
) -> None:
    url = f"/ops/api/v1/brands/{alpha.tenant.code}/code-keys/"
    listed = ops_client.get(url)
    assert listed.status_code == 200
    assert [row["version"] for row in listed.json()] == [1]
    assert "wrapped" not in listed.content.decode()
    assert "secret" not in listed.content.decode()

    assert support_client.post(url).status_code == 403  # support staff may look, not rotate
    rotated = ops_client.post(url)
    assert rotated.status_code == 201
    assert rotated.json()["version"] == 2
    retired = ops_client.post(f"{url}1/retire/")
    assert retired.status_code == 200
    assert [row["retired_at"] is not None for row in retired.json()] == [True, False]
    last = ops_client.post(f"{url}2/retire/")
    assert last.status_code == 409
    assert last.json()["code"] == "brand_wrong_status"
    from tenants.models import OpsAuditEntry

    actions = list(OpsAuditEntry.objects.filter(tenant=alpha.tenant).values_list("action", flat=True))
    assert "brand.rotate_code_key" in actions
    assert "brand.retire_code_key" in actions


def test_the_rewrap_command_reports_what_it_did(alpha: Brand, settings: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    new_master = base64.b64encode(bytes(range(50, 82))).decode()
    settings.JIUMA_MASTER_KEYS = f"k2:{new_master},{settings.JIUMA_MASTER_KEYS}"
    keys.master_key_ring.cache_clear()
    out = StringIO()
    call_command("rewrap_code_secrets", stdout=out)
    assert out.getvalue().startswith("re-wrapped ")
    assert set(CodeSecret.objects.values_list("master_key_id", flat=True)) == {"k2"}
