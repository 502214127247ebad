"""Shared fixtures: two brands (alpha, beta) are provisioned once per test session.

Tests run in a transaction that is rolled back; brand schemas, their staff and their profiles are
created before that, committed, and shared by every test. Helpers give a Django test client bound
to a brand's host, optionally signed in as one of its staff.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tenants import resolution, services
from tenants.models import OpsToken, PlatformRole, PlatformStaff, Tenant

STAFF_PASSWORD = "Staff-pass-2026!"
OWNER_PASSWORD = "Owner-pass-2026!"
OPS_TOKEN = "jmo_test_ops_admin_token_000000000000"
SUPPORT_TOKEN = "jmo_test_ops_support_token_0000000000"
ROLES = ("operator", "finance", "warehouse", "customer_service")


@dataclass
class Brand:
    tenant: Tenant
    host: str
    users: dict[str, Any] = field(default_factory=dict)  # role -> User (owner included)

    @property
    def schema(self) -> str:
        return self.tenant.schema_name

    def client(self, role: str | None = None) -> Client:
        """A test client on this brand's host, signed in as the staff member of `role` if given."""
        client = Client(HTTP_HOST=self.host)
        if role is not None:
            with schema_context(self.schema):
                client.force_login(self.users[role])
        return client


def _make_brand(code: str, name: str) -> Brand:
    from tenants.brand import services as staff_services
    from tenants.brand.models import BrandProfile, User

    created = services.create_brand(
        code=code, name=name, plan_code="standard", admin_username="owner", admin_password=OWNER_PASSWORD
    )
    services.provision(created.operation.pk)
    tenant = Tenant.objects.get(pk=created.tenant.pk)
    assert tenant.status == "ready", tenant.status
    brand = Brand(tenant=tenant, host=f"{code}.localhost")
    with schema_context(tenant.schema_name):
        BrandProfile.objects.filter(id=1).update(slogan=f"{name}的口号", service_phone="400-800-0000")
        brand.users["owner"] = User.objects.get(username="owner")
        for role in ROLES:
            brand.users[role] = staff_services.create_staff(
                username=f"{role}_{code}", password=STAFF_PASSWORD, role=role, display_name=f"{name}{role}"
            )
    return brand


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> dict[str, Brand]:
    with django_db_blocker.unblock():
        admin, _ = PlatformStaff.objects.get_or_create(username="ops-admin", defaults={"role": PlatformRole.ADMIN})
        admin.set_password("ops-admin-password")
        admin.save()
        support, _ = PlatformStaff.objects.get_or_create(
            username="ops-support", defaults={"role": PlatformRole.SUPPORT}
        )
        support.set_password("ops-support-password")
        support.save()
        for staff, raw in ((admin, OPS_TOKEN), (support, SUPPORT_TOKEN)):
            OpsToken.objects.get_or_create(
                key_hash=OpsToken.hash_key(raw), defaults={"staff": staff, "key_hint": raw[:8]}
            )
        brands = {"alpha": _make_brand("alpha", "阿尔法酒业"), "beta": _make_brand("beta", "贝塔酒业")}
        connection.set_schema_to_public()
    return brands


@pytest.fixture(scope="session")
def brands(django_db_setup: dict[str, Brand]) -> dict[str, Brand]:
    return django_db_setup


@pytest.fixture
def alpha(brands: dict[str, Brand], db: None) -> Brand:
    return brands["alpha"]


@pytest.fixture
def beta(brands: dict[str, Brand], db: None) -> Brand:
    return brands["beta"]


@pytest.fixture
def ops_client(db: None) -> Client:
    """A client on the platform host authenticated as a platform admin."""
    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {OPS_TOKEN}")


@pytest.fixture
def support_client(db: None) -> Client:
    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {SUPPORT_TOKEN}")


@pytest.fixture(autouse=True)
def _back_to_public() -> Iterator[None]:
    """Every test starts and ends in the public schema with empty per-process caches."""
    from codes.services import clear_batch_cache
    from commerce.wechat import config as wechat_config
    from frontends.consumer import _domains as brand_domains
    from rewards import caches as reward_caches

    resolution.invalidate()
    clear_batch_cache()
    reward_caches.clear()
    brand_domains.clear()
    wechat_config.forget_all()
    yield
    connection.set_schema_to_public()
    resolution.invalidate()
    clear_batch_cache()
    reward_caches.clear()
    brand_domains.clear()
    wechat_config.forget_all()
