from django.apps import AppConfig


class BrandConfig(AppConfig):
    name = "tenants.brand"
    label = "brand"
    verbose_name = "品牌管理"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from tenants.brand.roles import sync_roles_after_migrate

        # Roles are rebuilt from code after every migrate of a schema, so permissions of newly added
        # models reach the right roles without a data migration per app.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="brand.sync_roles")

        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from tenants.brand import signals

        user_logged_in.connect(signals.on_login, dispatch_uid="brand.audit_login")
        user_logged_out.connect(signals.on_logout, dispatch_uid="brand.audit_logout")
        user_login_failed.connect(signals.on_login_failed, dispatch_uid="brand.audit_login_failed")
