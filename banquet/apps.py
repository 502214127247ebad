from django.apps import AppConfig


class BanquetConfig(AppConfig):
    name = "banquet"
    verbose_name = "宴席酒"
    default_auto_field = "django.db.models.BigAutoField"
