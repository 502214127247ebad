"""Server-rendered pages. Consumer and console front ends grow here in later issues."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.brand.models import BrandProfile


def brand_home(request: HttpRequest) -> HttpResponse:
    profile = BrandProfile.objects.filter(id=1).first()
    return render(request, "frontends/brand_home.html", {"profile": profile, "tenant": request.tenant})  # type: ignore[attr-defined]


def platform_home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontends/platform_home.html")
