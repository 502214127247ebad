"""The benchmark's URLconf, the same module in both setups (with and without the tenant layer).

`/bench/row/` reads the brand's one-row profile table, so the tenant run also pays for whatever
the tenant database backend does before a query; `/bench/nodb/` touches no table at all.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from tenants.brand.models import BrandProfile


def brand_row(request: HttpRequest) -> JsonResponse:
    name = BrandProfile.objects.filter(id=1).values_list("display_name", flat=True).first()
    return JsonResponse({"brand": name})


def no_db(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/row/", brand_row, name="bench-row"),
    path("bench/nodb/", no_db, name="bench-nodb"),
]
