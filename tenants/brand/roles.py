"""Brand staff roles as Django groups, defined here in code and synced into each brand schema.

A role is a rule over permissions, not a fixed list, so permissions of models added later fall into
the right roles when `sync_roles()` runs after migrate.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django_tenants.utils import get_public_schema_name

from tenants.db import connection


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    FINANCE = "finance"
    WAREHOUSE = "warehouse"
    CUSTOMER_SERVICE = "customer_service"


ROLE_NAMES = {
    Role.OWNER: "品牌所有者",
    Role.OPERATOR: "运营",
    Role.FINANCE: "财务",
    Role.WAREHOUSE: "仓储物流",
    Role.CUSTOMER_SERVICE: "客服",
}

# App labels by business area.
_BUSINESS_APPS = {"commerce", "codes", "rewards", "custom_liquor", "banquet", "cellar_storage"}
_STAFF_ADMIN = {
    ("brand", "user"),
    ("auth", "group"),
    ("axes", "accessattempt"),
    ("axes", "accesslog"),
    ("axes", "accessfailurelog"),
}
# Model names (app_label, model) owned by the finance area; later issues add theirs here.
_FINANCE_MODELS = {
    "payment",
    "refund",
    "payout",
    "withdrawal",
    "commission",
    "ledgerentry",
    "pointsentry",
    "settlement",
    "budget",
}
_WAREHOUSE_APPS = {"codes"}
_WAREHOUSE_MODELS = {"dealer", "store", "region", "outbound", "stockmovement", "inventory", "shipment"}
_CS_MODELS = {"member", "order", "orderevent", "aftersale", "address", "redemption", "banquet", "jar"}

PermissionRule = Callable[[str, str, str], bool]  # (app_label, model, action) -> granted


def _owner(app: str, model: str, action: str) -> bool:
    return True


def _operator(app: str, model: str, action: str) -> bool:
    if (app, model) in _STAFF_ADMIN or model in _FINANCE_MODELS:
        return action == "view" and (app, model) not in _STAFF_ADMIN
    return app in _BUSINESS_APPS or (app, model) == ("brand", "brandprofile")


def _finance(app: str, model: str, action: str) -> bool:
    if app not in _BUSINESS_APPS:
        return False
    return action == "view" or model in _FINANCE_MODELS


def _warehouse(app: str, model: str, action: str) -> bool:
    if app not in _BUSINESS_APPS:
        return False
    return app in _WAREHOUSE_APPS or model in _WAREHOUSE_MODELS or (action == "view" and model == "product")


def _customer_service(app: str, model: str, action: str) -> bool:
    if app not in _BUSINESS_APPS:
        return False
    if model in _CS_MODELS:
        return action in ("view", "change")
    return action == "view" and model not in _FINANCE_MODELS


RULES: dict[Role, PermissionRule] = {
    Role.OWNER: _owner,
    Role.OPERATOR: _operator,
    Role.FINANCE: _finance,
    Role.WAREHOUSE: _warehouse,
    Role.CUSTOMER_SERVICE: _customer_service,
}


def _action_of(codename: str, model: str) -> str:
    prefix = codename.split("_", 1)[0]
    return prefix if codename == f"{prefix}_{model}" else codename


def sync_roles() -> dict[Role, Group]:
    """Create or update the role groups of the current brand schema. Returns them by role."""
    perms = list(
        Permission.objects.select_related("content_type").exclude(
            Q(content_type__app_label="sessions") | Q(content_type__app_label="contenttypes")
        )
    )
    groups: dict[Role, Group] = {}
    for role, rule in RULES.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        granted = [
            p
            for p in perms
            if rule(p.content_type.app_label, p.content_type.model, _action_of(p.codename, p.content_type.model))
        ]
        group.permissions.set(granted)
        groups[role] = group
    return groups


def sync_roles_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # post_migrate fires once per app; the roles need every app's permissions, so act on the last.
    from django.apps import apps

    if connection.schema_name == get_public_schema_name():
        return
    if sender is not list(apps.get_app_configs())[-1]:
        return
    sync_roles()


def role_of(user: Any) -> Role | None:
    names = {g.name for g in user.groups.all()}
    for role in Role:
        if role.value in names:
            return role
    return None
