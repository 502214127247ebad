"""Cache: Redis when configured, else a per-process memory cache. Keys are prefixed by tenant schema."""

from config.env import env

_cache_url = env.str("CACHE_URL", default="")
_tenant_keys = {
    "KEY_FUNCTION": "django_tenants.cache.make_key",
    "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
}
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _cache_url,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="jiuma"),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
            **_tenant_keys,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "jiuma",
            **_tenant_keys,
        }
    }
