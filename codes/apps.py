from django.apps import AppConfig


class CodesConfig(AppConfig):
    name = "codes"
    verbose_name = "一物一码"
    default_auto_field = "django.db.models.BigAutoField"
