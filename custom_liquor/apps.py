from django.apps import AppConfig


class CustomLiquorConfig(AppConfig):
    name = "custom_liquor"
    verbose_name = "定制酒"
    default_auto_field = "django.db.models.BigAutoField"
