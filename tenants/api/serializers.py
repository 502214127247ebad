from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants.api.strict import StrictSerializer
from tenants.models import CodeSecret, Domain, Plan, Tenant, TenantOperation


class PlanSerializer(serializers.ModelSerializer[Plan]):
    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "max_staff",
            "max_stores",
            "max_codes_per_month",
            "max_active_campaigns",
            "annual_fee_fen",
            "is_active",
        ]


class OperationSerializer(serializers.ModelSerializer[TenantOperation]):
    duration_s = serializers.FloatField(read_only=True)

    class Meta:
        model = TenantOperation
        fields = [
            "id",
            "kind",
            "status",
            "result",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "duration_s",
        ]


class DomainSerializer(serializers.ModelSerializer[Domain]):
    class Meta:
        model = Domain
        fields = ["domain", "is_primary"]


class BrandSerializer(serializers.ModelSerializer[Tenant]):
    plan: serializers.SlugRelatedField[Plan] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    domains = DomainSerializer(many=True, read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Tenant
        fields = [
            "code",
            "number",
            "name",
            "schema_name",
            "plan",
            "status",
            "status_display",
            "status_reason",
            "domains",
            "contact_name",
            "contact_phone",
            "created_at",
            "ready_at",
            "status_changed_at",
        ]


class BrandDetailSerializer(BrandSerializer):
    operations = serializers.SerializerMethodField()

    class Meta(BrandSerializer.Meta):
        fields = [*BrandSerializer.Meta.fields, "operations"]

    def get_operations(self, tenant: Tenant) -> list[dict[str, Any]]:
        recent = tenant.operations.order_by("-created_at")[:10]
        return list(OperationSerializer(recent, many=True).data)


class BrandCreateSerializer(StrictSerializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=100)
    plan = serializers.CharField(max_length=32)
    domain = serializers.CharField(max_length=253, required=False, allow_blank=True)
    admin_username = serializers.CharField(max_length=150)
    admin_password = serializers.CharField(max_length=128, required=False, allow_blank=True, write_only=True)
    admin_phone = serializers.CharField(max_length=20, required=False, allow_blank=True)
    contact_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    contact_phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class SuspendSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DomainCreateSerializer(StrictSerializer):
    domain = serializers.CharField(max_length=253)
    primary = serializers.BooleanField(default=False)


class ConfirmDeletionSerializer(StrictSerializer):
    export_id = serializers.IntegerField(min_value=1)
    confirm_code = serializers.CharField(max_length=64)


class CodeKeySerializer(serializers.ModelSerializer[CodeSecret]):
    """A code-key version as ops see it: never the secret, wrapped or not."""

    class Meta:
        model = CodeSecret
        fields = ["version", "master_key_id", "created_at", "retired_at"]


class OpsMeSerializer(serializers.Serializer[Any]):
    """The signed-in platform staff member."""

    username = serializers.CharField()
    display_name = serializers.CharField()
    role = serializers.CharField()
