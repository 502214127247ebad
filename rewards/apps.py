from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "营销奖励"
    default_auto_field = "django.db.models.BigAutoField"
