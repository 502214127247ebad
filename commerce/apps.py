from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "商城核心"
    default_auto_field = "django.db.models.BigAutoField"
