"""Brand staff roles and channel staff roles as Django groups, defined here in code and synced into
each brand schema.

A role is a rule over permissions, not a fixed list, so permissions of models added later fall into
the right roles when `sync_roles()` runs after migrate.

Brand staff (is_staff) use the admin and the brand API. Channel staff (commerce.ChannelStaff: the
people of a dealer or a store, is_staff False) never do; their roles hold only the business apps'
custom permissions named for their side of the channel: `dealer_<verb>` for dealer staff,
`store_<verb>` for store staff, and `dealer_manage_<...>` / `store_manage_<...>` for the dealer's
manager and the store's owner only. An app adding a terminal action declares such a permission
(Meta.permissions) and it reaches the right channel roles at the next migrate.
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


class ChannelRole(StrEnum):
    DEALER_MANAGER = "dealer_manager"
    DEALER_CLERK = "dealer_clerk"
    STORE_OWNER = "store_owner"
    STORE_CLERK = "store_clerk"


CHANNEL_ROLE_NAMES = {
    ChannelRole.DEALER_MANAGER: "经销商负责人",
    ChannelRole.DEALER_CLERK: "经销商业务员",
    ChannelRole.STORE_OWNER: "门店店主",
    ChannelRole.STORE_CLERK: "门店店员",
}
DEALER_ROLES = frozenset({ChannelRole.DEALER_MANAGER, ChannelRole.DEALER_CLERK})
STORE_ROLES = frozenset({ChannelRole.STORE_OWNER, ChannelRole.STORE_CLERK})

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
    "budgetentry",
    "paynotification",
    "storeearning",
    "storewithdrawal",
    "commissionentry",
    "commissionwithdrawal",
}
_WAREHOUSE_APPS = {"codes"}
_WAREHOUSE_MODELS = {"outbound", "stockmovement", "inventory", "shipment", "stock"}
# The sales channel (commerce): run by the owner and operators, read by everyone else in the business.
_CHANNEL_MODELS = {"dealer", "dealerarea", "store", "channelstaff"}
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
    if action == "view" and model in ("product", "sku", "order", "orderline", *_CHANNEL_MODELS):
        return True
    return app in _WAREHOUSE_APPS or model in _WAREHOUSE_MODELS


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


def _channel_rule(side: str, *, manages: bool) -> PermissionRule:
    """The custom permissions of one side of the channel ("dealer" or "store"); the `_manage_` ones
    only if the role manages its dealer or store."""

    def rule(app: str, model: str, action: str) -> bool:
        if app not in _BUSINESS_APPS or not action.startswith(f"{side}_"):
            return False
        return manages or not action.startswith(f"{side}_manage_")

    return rule


CHANNEL_RULES: dict[ChannelRole, PermissionRule] = {
    ChannelRole.DEALER_MANAGER: _channel_rule("dealer", manages=True),
    ChannelRole.DEALER_CLERK: _channel_rule("dealer", manages=False),
    ChannelRole.STORE_OWNER: _channel_rule("store", manages=True),
    ChannelRole.STORE_CLERK: _channel_rule("store", manages=False),
}


def _action_of(codename: str, model: str) -> str:
    prefix = codename.split("_", 1)[0]
    return prefix if codename == f"{prefix}_{model}" else codename


def sync_roles() -> dict[Role | ChannelRole, Group]:
    """Create or update the role groups (brand and channel) of the current brand schema. Returns
    them by role."""
    perms = list(
        Permission.objects.select_related("content_type").exclude(
            Q(content_type__app_label="sessions") | Q(content_type__app_label="contenttypes")
        )
    )
    groups: dict[Role | ChannelRole, Group] = {}
    rules: list[tuple[Role | ChannelRole, PermissionRule]] = [*RULES.items(), *CHANNEL_RULES.items()]
    for role, rule in rules:
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
