from django.apps import AppConfig


class CellarStorageConfig(AppConfig):
    name = "cellar_storage"
    verbose_name = "封坛酒"
    default_auto_field = "django.db.models.BigAutoField"
