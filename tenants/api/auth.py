"""How platform staff authenticate to the ops API: a bearer token, or HTTP Basic in a browser."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from tenants.models import OpsToken, PlatformStaff


class OpsTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[PlatformStaff, OpsToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        token = OpsToken.objects.usable().select_related("staff").filter(key_hash=OpsToken.hash_key(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed()
        OpsToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.staff, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class OpsBasicAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[PlatformStaff, None] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"basic" or len(header) != 2:
            return None
        try:
            username, _, password = base64.b64decode(header[1]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed() from exc
        staff = PlatformStaff.objects.filter(username=username, is_active=True).first()
        if staff is None or not staff.check_password(password):
            raise exceptions.AuthenticationFailed()
        PlatformStaff.objects.filter(pk=staff.pk).update(last_login_at=timezone.now())
        return staff, None

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="jiuma-ops"'


class IsPlatformStaff(permissions.BasePermission):
    """Any active platform staff may read; only platform admins may change brands."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user: object = request.user
        if not isinstance(user, PlatformStaff) or not user.is_active:
            return False
        return request.method in permissions.SAFE_METHODS or user.can_manage_brands
