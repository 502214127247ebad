"""Binds who is acting to the audit log for the length of a request, and logs unrecorded writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name

from tenants.brand import audit
from tenants.brand.models import AuditAction
from tenants.db import connection
from tenants.logging import request_id_var

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_ip(request: HttpRequest) -> str | None:
    from axes.helpers import get_client_ip_address

    ip: str | None = get_client_ip_address(request)
    return ip


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        rid_token = request_id_var.set(request_id)
        try:
            if connection.schema_name == get_public_schema_name():
                response = self.get_response(request)
            else:
                response = self._in_brand(request, request_id)
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_id_var.reset(rid_token)

    def _in_brand(self, request: HttpRequest, request_id: str) -> HttpResponse:
        ctx = audit.AuditContext(
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            request_id=request_id,
            via="api" if request.path.startswith("/api/") else "admin" if request.path.startswith("/admin/") else "web",
        )
        user = getattr(request, "user", None)
        token = audit.set_context(ctx)
        try:
            # The user is resolved lazily; bind it now so services see who acts.
            if user is not None and user.is_authenticated:
                ctx.actor_id, ctx.actor_name = user.pk, user.get_username()
            response = self.get_response(request)
            # DRF authenticates inside the view; pick the user up afterwards too.
            user = getattr(request, "user", None)
            if (
                request.method in _WRITE_METHODS
                and ctx.recorded == 0
                and user is not None
                and user.is_authenticated
                and (getattr(user, "is_staff", False) or str(getattr(user, "username", "")).startswith("apikey:"))
                and response.status_code < 400
                and not request.path.startswith(("/admin/login/", "/admin/logout/", "/admin/jsi18n/"))
            ):
                audit.record(
                    AuditAction.REQUEST,
                    actor=user,
                    object_type="http",
                    object_repr=request.path[:200],
                    detail=f"{request.method} {request.path} -> {response.status_code}",
                )
            return response
        finally:
            audit.reset_context(token)
