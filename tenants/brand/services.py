"""Brand staff use-cases: accounts, roles, profile. Every change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from tenants.brand import audit
from tenants.brand.models import AuditAction, BrandProfile, User
from tenants.brand.roles import ROLE_NAMES, Role
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound
from tenants.validation import clean_admin_password, clean_admin_username, clean_phone


class StaffErrorCode:
    INVALID_ROLE = "invalid_role"
    USERNAME_TAKEN = "username_taken"
    QUOTA = "staff_quota_exceeded"
    NOT_FOUND = "staff_not_found"
    LAST_OWNER = "last_owner"


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        raise JiumaError(StaffErrorCode.INVALID_ROLE, _("角色不存在。"), fields={"role": role}) from exc


def check_staff_quota(adding: int = 1) -> None:
    tenant = getattr(connection, "tenant", None)
    plan = getattr(tenant, "plan", None)
    if plan is None:
        return
    # Brand staff only: the people of dealers and stores (commerce.ChannelStaff) are not staff.
    if User.objects.filter(is_active=True, is_staff=True).count() + adding > plan.max_staff:
        raise Conflict(StaffErrorCode.QUOTA, _("员工账号数量已达套餐上限（%(n)d 个）。") % {"n": plan.max_staff})


@transaction.atomic
def create_staff(*, username: str, password: str, role: str, display_name: str = "", phone: str = "") -> User:
    username = clean_admin_username(username)
    clean_admin_password(password)
    the_role = _check_role(role)
    phone = clean_phone(phone, "phone")
    check_staff_quota()
    if User.objects.filter(username=username).exists():
        raise Conflict(StaffErrorCode.USERNAME_TAKEN, _("用户名已存在。"), fields={"username": username})
    user = User(username=username, display_name=display_name.strip()[:64], phone=phone, is_staff=True)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=the_role.value)])
    audit.record(AuditAction.CREATE, obj=user, after={**audit.snapshot(user), "role": the_role.value})
    return user


def _owners() -> Any:
    return User.objects.filter(is_active=True, groups__name=Role.OWNER.value)


@transaction.atomic
def set_staff_role(user_id: int, role: str) -> User:
    the_role = _check_role(role)
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound(StaffErrorCode.NOT_FOUND, _("员工不存在。"))
    before = [g.name for g in user.groups.all()]
    if Role.OWNER.value in before and the_role != Role.OWNER and _owners().exclude(pk=user.pk).count() == 0:
        raise Conflict(StaffErrorCode.LAST_OWNER, _("至少要保留一名品牌所有者。"))
    user.groups.set([Group.objects.get(name=the_role.value)])
    audit.record(AuditAction.UPDATE, obj=user, before={"roles": before}, after={"roles": [the_role.value]})
    return user


@transaction.atomic
def deactivate_staff(user_id: int) -> User:
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound(StaffErrorCode.NOT_FOUND, _("员工不存在。"))
    if user.groups.filter(name=Role.OWNER.value).exists() and _owners().exclude(pk=user.pk).count() == 0:
        raise Conflict(StaffErrorCode.LAST_OWNER, _("至少要保留一名品牌所有者。"))
    User.objects.filter(pk=user.pk).update(is_active=False)
    audit.record(AuditAction.UPDATE, obj=user, before={"is_active": True}, after={"is_active": False})
    user.is_active = False
    return user


@transaction.atomic
def update_profile(**changes: Any) -> BrandProfile:
    profile = BrandProfile.objects.select_for_update().get(id=1)
    before = audit.snapshot(profile)
    allowed = {"display_name", "slogan", "service_phone"}
    for name, value in changes.items():
        if name in allowed:
            setattr(profile, name, (value or "").strip())
    if not profile.display_name:
        raise JiumaError("invalid_profile", _("品牌展示名不能为空。"))
    profile.save()
    b, a = audit.changed_only(before, audit.snapshot(profile))
    audit.record(AuditAction.UPDATE, obj=profile, before=b, after=a)
    return profile


def role_choices() -> list[tuple[str, str]]:
    return [(role.value, name) for role, name in ROLE_NAMES.items()]
