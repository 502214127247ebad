"""Scan URLs on the short code host: `<CODE_URL_PREFIX><code>` reaches the brand the code names.

One short host serves every brand's codes: the brand number is in clear in the code, so the brand
is found without a query once cached (and without trying every brand's key). Runs before the
tenant middleware, which leaves a request it routed alone. Anything else on the code host is a
platform page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from codes import format as code_format
from tenants.middleware import no_such_brand, request_host, route_to_brand
from tenants.models import TenantStatus
from tenants.resolution import resolve_number

# A scan URL and the pages under it (the position it shares, the consumer's WeChat login for it ...):
# all routed to the code's brand, whose URLconf answers or 404s.
_SCAN_PATH = re.compile(r"^/[cC]/(?P<code>[^/]{1,64})(?:/.*)?$")
# A store's or a clerk's QR at the till (store rewards): it names the brand by number, and its page
# sets the cookie that ties the consumer's next cap scan, on this host, to the store.
_STORE_QR_PATH = re.compile(r"^/s/(?P<number>\d{1,5})/[^/]{1,200}/$")


def code_hosts() -> frozenset[str]:
    host = urlsplit(settings.CODE_URL_PREFIX.lower()).hostname or ""
    return frozenset(filter(None, [host, *settings.CODE_EXTRA_HOSTS]))


class CodeHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hosts = code_hosts()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request_host(request)
        if host in self.hosts:
            match = _SCAN_PATH.match(request.path)
            if match is not None:
                parsed = code_format.parse(match["code"])
                tenant = resolve_number(code_format.brand_number(parsed[0])) if parsed is not None else None
                if tenant is None or tenant.status == TenantStatus.DELETED:
                    return no_such_brand(
                        request,
                        "frontends/scan_unknown.html",
                        _("无法识别的码"),
                        _("该码无法识别，可能不是正品，请谨慎购买。"),
                    )
                route_to_brand(request, tenant, host)
            else:
                store_qr = _STORE_QR_PATH.match(request.path)
                if store_qr is not None:
                    tenant = resolve_number(int(store_qr["number"]))
                    if tenant is None or tenant.status == TenantStatus.DELETED:
                        return no_such_brand(request, "frontends/notice.html", _("门店码无效"), _("没有找到这个品牌。"))
                    route_to_brand(request, tenant, host)
        return self.get_response(request)
