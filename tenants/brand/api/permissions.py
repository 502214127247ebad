from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def has_perm(*perms: str) -> type[BasePermission]:
    """A DRF permission: the staff member is active, is staff, and holds every named Django permission."""

    class _HasPerm(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            return bool(
                user
                and user.is_authenticated
                and user.is_active
                and getattr(user, "is_staff", False)
                and user.has_perms(perms)
            )

    _HasPerm.__name__ = "HasPerm_" + "_".join(p.replace(".", "_") for p in perms)
    return _HasPerm


class IsBrandStaff(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and getattr(user, "is_staff", False))
