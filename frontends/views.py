"""Server-rendered pages. Consumer and console front ends grow here in later issues."""

from __future__ import annotations

import json
import secrets
import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tenants.brand.models import BrandProfile
from tenants.db import connection


def brand_home(request: HttpRequest) -> HttpResponse:
    profile = BrandProfile.objects.filter(id=1).first()
    return render(request, "frontends/brand_home.html", {"profile": profile, "tenant": request.tenant})  # type: ignore[attr-defined]


def scan(request: HttpRequest, code: str) -> HttpResponse:
    """The page a scanned cap opens: authenticity, first-scan facts, warnings, and for an inner code
    the reward (frontends.claim). Records the scan, with the member when one is signed in."""
    from codes.scanning import Verdict, place_token, record_scan
    from frontends import claim, consumer

    member = consumer.current_member(request) if consumer.member_cookie_name(request) in request.COOKIES else None
    result = record_scan(
        code,
        ip=_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        member_id=member.pk if member is not None else None,
    )
    profile = _profile()
    status = 200 if result.verdict == Verdict.GENUINE else 404 if result.code is None else 200
    response = render(
        request,
        "frontends/scan.html",
        {
            "result": result,
            "profile": profile,
            "tenant": request.tenant,  # type: ignore[attr-defined]
            "place_token": place_token(result),
            "reward": claim.for_scan(request, code, result, member),
            "code": code,
        },
        status=status,
    )
    # Every scan is an event: never served from a cache.
    response["Cache-Control"] = "no-store"
    if "jm_device" not in request.COOKIES:  # a browser id for risk control (velocity per device)
        response.set_cookie("jm_device", secrets.token_urlsafe(16), max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


# The capability is the signed token in the body (it names one scan of one code and expires): there
# is no session to protect, and a WeChat / H5 page posting it carries no CSRF cookie.
@csrf_exempt
@require_POST
def scan_place(request: HttpRequest, code: str) -> JsonResponse:
    """The position the scan page's browser shared: {"token", "latitude", "longitude"} as JSON."""
    from codes.keyring import check
    from codes.scanning import record_scan_place
    from tenants.errors import JiumaError

    number = getattr(request.tenant, "number", None)  # type: ignore[attr-defined]
    parsed = check(code, tenant_number=number) if number is not None else None
    if parsed is None:
        message = _("该码无法识别，可能不是正品，请谨慎购买。")
        return JsonResponse({"code": "invalid_code", "message": message}, status=404)
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        return JsonResponse({"code": "malformed_request", "message": _("请求内容格式错误。")}, status=400)
    try:
        token = str(body.get("token", ""))[:400]
        result = record_scan_place(parsed, token, body.get("latitude"), body.get("longitude"))
    except JiumaError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message}, status=exc.status_code)
    region = result.region
    return JsonResponse({"region": {"code": region.code, "name": region.full_name} if region else None})


# The brand profile shown on scan pages, kept per process for a few seconds (one query saved per scan).
_PROFILE_SECONDS = 10.0
_profiles: dict[str, tuple[float, BrandProfile | None]] = {}


def _profile() -> BrandProfile | None:
    schema = connection.schema_name
    cached = _profiles.get(schema)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    profile = BrandProfile.objects.filter(id=1).first()
    _profiles[schema] = (now + _PROFILE_SECONDS, profile)
    return profile


def _client_ip(request: HttpRequest) -> str | None:
    ip: str | None = request.META.get("REMOTE_ADDR")
    return ip


def platform_home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontends/platform_home.html")
