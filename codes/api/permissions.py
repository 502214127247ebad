"""Who may call the codes API: brand staff with a Django permission, or a machine key with a scope."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.brand.api.permissions import has_perm
from tenants.brand.api_keys import has_scope
from tenants.brand.models import ApiKeyScope


def staff_or_key(perm: str, scope: ApiKeyScope) -> type[BasePermission]:
    staff = has_perm(perm)

    class _StaffOrKey(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            return has_scope(request, scope) or staff().has_permission(request, view)

    _StaffOrKey.__name__ = f"StaffOrKey_{perm.replace('.', '_')}"
    return _StaffOrKey
