"""Request routing: health checks, host -> brand schema, and what a brand's status allows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import set_urlconf
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from tenants import health
from tenants.api.errors import error_response
from tenants.db import connection
from tenants.models import TenantStatus
from tenants.resolution import resolve_host, resolve_number

GetResponse = Callable[[HttpRequest], HttpResponse]


class HealthCheckMiddleware:
    """Answers /healthz and /readyz for any host name, before tenant routing (load balancers)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            report = health.readiness()
            return JsonResponse(report.as_dict(), status=200 if report.ok else 503)
        return self.get_response(request)


class MalformedQueryMiddleware:
    """Refuses a query string carrying a NUL character (400), for every view, API and admin alike.

    PostgreSQL text cannot hold NUL, so a list filter given one (`?action=%00`) failed in the
    database with a 500; no legitimate client sends it.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return error_response(request, 400, "malformed_request", _("请求内容格式错误。"), title=_("请求无效"))
        return self.get_response(request)


class PublicTenant:
    """Stands for the public schema on platform hosts (ops API, platform pages)."""

    schema_name = get_public_schema_name()
    status = TenantStatus.READY
    is_public = True

    def __str__(self) -> str:
        return "public"


PUBLIC = PublicTenant()


def request_host(request: HttpRequest) -> str:
    """The request's host name as routing compares it: no port, lower case, no trailing dot."""
    return request.get_host().split(":")[0].lower().rstrip(".")


def route_to_brand(request: HttpRequest, tenant: Any, host: str) -> None:
    """Serve `request` from `tenant`'s schema with the brand URLconf."""
    tenant.domain_url = host
    request.tenant = tenant  # type: ignore[attr-defined]
    connection.set_tenant(tenant)
    request.urlconf = settings.ROOT_URLCONF
    set_urlconf(None)


def no_such_brand(request: HttpRequest, template: str, title: str, message: str) -> HttpResponse:
    """A 404 page rendered in the public schema, for a request no live brand answers."""
    connection.set_schema_to_public()
    return render(request, template, {"title": title, "message": message}, status=404)


class TenantMiddleware(TenantMainMiddleware):
    """Selects the brand schema from the host name with a cached lookup (no query after warm-up)."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if getattr(request, "tenant", None) is not None:  # routed already (codes.middleware: scan URLs)
            return None
        host = request_host(request)
        if host in settings.PLATFORM_HOSTS:
            connection.set_schema_to_public()
            request.tenant = PUBLIC  # type: ignore[attr-defined]
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            set_urlconf(request.urlconf)
            return None
        tenant = resolve_host(host)
        if tenant is None or tenant.status == TenantStatus.DELETED:
            return no_such_brand(
                request, "frontends/notice.html", _("页面不存在"), _("没有找到这个品牌站点，请检查网址是否正确。")
            )
        route_to_brand(request, tenant, host)
        return None


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Staff of a suspended brand may still sign in and out to read.
_SIGN_IN_PATHS = ("/admin/login/", "/admin/logout/", "/api/v1/auth/")
# Consumer endpoints under /api/ (what consumer pages load): suspended like the pages themselves.
_CONSUMER_API_PATHS = ("/api/v1/site/",)


class TenantStatusMiddleware:
    """What a brand may do in its current status.

    pending/failed: every page says the site is being prepared (the schema may not exist yet).
    suspended: consumer pages show a friendly notice; staff may still sign in and read in the
    admin and API, but every write is refused.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        status = getattr(tenant, "status", TenantStatus.READY)
        if status == TenantStatus.READY:
            return self.get_response(request)
        if status in (TenantStatus.PENDING, TenantStatus.FAILED):
            return self._notice(request, _("品牌站点正在开通中，请稍后再试。"), "tenant_not_ready", 503)
        # Suspended.
        is_staff_area = request.path.startswith(("/admin/", "/api/")) and not request.path.startswith(
            _CONSUMER_API_PATHS
        )
        if not is_staff_area:
            return self._notice(request, _("该品牌服务暂停中，如有疑问请联系品牌客服。"), "tenant_suspended", 503)
        if request.method not in _SAFE_METHODS and not request.path.startswith(_SIGN_IN_PATHS):
            return self._notice(request, _("品牌已暂停服务，当前只能查看，不能修改。"), "tenant_suspended", 403)
        return self.get_response(request)

    @staticmethod
    def _notice(request: HttpRequest, message: str, code: str, status: int) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"code": code, "message": message}, status=status)
        return render(request, "frontends/notice.html", {"title": _("暂停服务"), "message": message}, status=status)


class BrandNumberPathMiddleware:
    """Paths on a platform host that name a brand by its number (settings.BRAND_NUMBER_PATHS, each a
    regex with a `number` group) are served by that brand, e.g. WeChat Pay's notifications, which
    reach every brand at one platform address (`/pay/notify/<number>/`) whatever its own domains.
    Runs before TenantMiddleware, which leaves a routed request alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.patterns = [re.compile(pattern) for pattern in settings.BRAND_NUMBER_PATHS]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request_host(request)
        if host in settings.PLATFORM_HOSTS:
            for pattern in self.patterns:
                match = pattern.match(request.path)
                if match is None:
                    continue
                tenant = resolve_number(int(match["number"]))
                if tenant is None or tenant.status == TenantStatus.DELETED:
                    return no_such_brand(request, "frontends/notice.html", _("页面不存在"), _("没有找到这个品牌。"))
                route_to_brand(request, tenant, host)
                break
        return self.get_response(request)
