"""Core Django settings: apps, middleware, templates, i18n and time."""

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, LOCAL_DIR, env

JIUMA_ENV = env.str("JIUMA_ENV", default="development")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
_DEV_SECRET = "jiuma-insecure-local-development-key-change-me-0123456789"  # noqa: S105 - refused in production
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET)
if JIUMA_ENV == "production" and (SECRET_KEY == _DEV_SECRET or DEBUG):
    raise ImproperlyConfigured("production needs DJANGO_SECRET_KEY set and DJANGO_DEBUG off")
# Hosts are checked by the tenant middleware against the Domain table; this list only has to admit
# the platform's own host names and every brand domain (a leading dot admits all subdomains).
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", ".localhost", "127.0.0.1", "testserver"])

# --- apps: the public schema holds only the tenant registry and platform staff -------------------
SHARED_APPS = [
    # Before django_tenants so that its migrate_schemas command is replaced by ours.
    "tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
]
# auth, sessions, admin and every business app live in each brand's own schema.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "axes",
    "tenants.brand",
    "commerce",
    "codes",
    "rewards",
    "custom_liquor",
    "banquet",
    "cellar_storage",
    "frontends",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
AUTH_USER_MODEL = "brand.User"

MIDDLEWARE = [
    "tenants.middleware.HealthCheckMiddleware",
    "codes.middleware.CodeHostMiddleware",
    "tenants.middleware.BrandNumberPathMiddleware",
    "tenants.middleware.TenantMiddleware",
    "tenants.middleware.MalformedQueryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantStatusMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenants.brand.middleware.AuditContextMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontends" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- language and time: Simplified Chinese for people, UTC in storage, Asia/Shanghai on screen -----
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"

# --- files: static assets are served by WhiteNoise; uploads are stored per tenant -----------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=LOCAL_DIR / "staticfiles")
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=LOCAL_DIR / "media")
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
STORAGES = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
