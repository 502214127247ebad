"""Host name -> brand, cached in each process.

The stock django-tenants middleware queries the Domain table on every request, which halves the
throughput of a simple view. Here each process keeps the answers for TENANT_CACHE_SECONDS; changes
made in this process (suspend, resume, domain changes) clear the cache at once, other processes
see them within the TTL. The cache holds a bounded number of hosts, so its cost per request does
not grow with the number of brands.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from tenants.models import Domain, Tenant


@dataclass(frozen=True)
class Resolution:
    tenant: Tenant | None  # None: the host belongs to no brand
    expires_at: float


class TenantCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, Resolution] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, host: str) -> Resolution | None:
        entry = self._entries.get(host)
        if entry is None or entry.expires_at < time.monotonic():
            return None
        return entry

    def put(self, host: str, tenant: Tenant | None) -> None:
        ttl = settings.TENANT_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            self._entries[host] = Resolution(tenant, time.monotonic() + ttl)
            self._entries.move_to_end(host)
            while len(self._entries) > settings.TENANT_CACHE_MAX_ENTRIES:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


tenant_cache = TenantCache()


def resolve_host(host: str) -> Tenant | None:
    """The brand that owns `host` (lower-case, no port), or None. Uses the per-process cache."""
    cached = tenant_cache.get(host)
    if cached is not None:
        return cached.tenant
    domain = Domain.objects.select_related("tenant", "tenant__plan").filter(domain=host).first()
    tenant = domain.tenant if domain is not None else None
    tenant_cache.put(host, tenant)
    return tenant


number_cache = TenantCache()


def resolve_number(number: int) -> Tenant | None:
    """The brand with this number (what bottle codes carry), or None. Cached like hosts."""
    key = str(number)
    cached = number_cache.get(key)
    if cached is not None:
        return cached.tenant
    tenant = Tenant.objects.select_related("plan").filter(number=number).first()
    number_cache.put(key, tenant)
    return tenant


def invalidate() -> None:
    """Forget every cached host and number of this process (after any change to brands or domains)."""
    tenant_cache.clear()
    number_cache.clear()
