from django.apps import AppConfig


class FrontendsConfig(AppConfig):
    name = "frontends"
    verbose_name = "前端页面"
    default_auto_field = "django.db.models.BigAutoField"
