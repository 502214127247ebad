from __future__ import annotations

from rest_framework import serializers

from tenants.api.strict import StrictSerializer
from tenants.brand.models import AuditEntry, BrandProfile, User
from tenants.brand.roles import role_of


class SiteSerializer(serializers.ModelSerializer[BrandProfile]):
    class Meta:
        model = BrandProfile
        fields = ["display_name", "slogan", "service_phone", "logo"]


class ProfileUpdateSerializer(StrictSerializer):
    display_name = serializers.CharField(max_length=100, required=False)
    slogan = serializers.CharField(max_length=200, required=False, allow_blank=True)
    service_phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class StaffSerializer(serializers.ModelSerializer[User]):
    role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "phone", "is_active", "role", "last_login", "date_joined"]

    def get_role(self, user: User) -> str | None:
        role = role_of(user)
        return role.value if role else None


class MeSerializer(StaffSerializer):
    """The signed-in staff member, with every permission they hold ("app.codename")."""

    permissions = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(StaffSerializer.Meta):
        fields = [*StaffSerializer.Meta.fields, "permissions"]


class StaffCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True)
    role = serializers.CharField(max_length=32)
    display_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")


class RoleSerializer(StrictSerializer):
    role = serializers.CharField(max_length=32)


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128)


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor_id",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "detail",
            "ip",
            "user_agent",
            "request_id",
            "via",
        ]
