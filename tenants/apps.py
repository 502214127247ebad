from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "租户平台"
    default_auto_field = "django.db.models.BigAutoField"
