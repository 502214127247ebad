"""Server-rendered pages. Consumer and console front ends grow here in later issues."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.brand.models import BrandProfile
from tenants.db import connection


def brand_home(request: HttpRequest) -> HttpResponse:
    profile = BrandProfile.objects.filter(id=1).first()
    return render(request, "frontends/brand_home.html", {"profile": profile, "tenant": request.tenant})  # type: ignore[attr-defined]


def scan(request: HttpRequest, code: str) -> HttpResponse:
    """The page a scanned cap opens: authenticity, first-scan facts, warnings. Records the scan."""
    from codes.scanning import Verdict, record_scan

    result = record_scan(
        code,
        ip=_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    profile = _profile()
    status = 200 if result.verdict == Verdict.GENUINE else 404 if result.code is None else 200
    response = render(
        request,
        "frontends/scan.html",
        {"result": result, "profile": profile, "tenant": request.tenant},  # type: ignore[attr-defined]
        status=status,
    )
    # Every scan is an event: never served from a cache.
    response["Cache-Control"] = "no-store"
    return response


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
