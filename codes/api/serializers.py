from __future__ import annotations

from typing import Any

from rest_framework import serializers

from codes.models import AssociationUpload, Batch, CodeStatus, SerialGroup
from tenants.api.strict import StrictSerializer


class BatchSerializer(serializers.ModelSerializer[Batch]):
    sku: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    code_count = serializers.IntegerField(read_only=True)
    password_available = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id",
            "number",
            "key_version",
            "has_inner",
            "has_outer",
            "bottles",
            "first_bottle_serial",
            "bottles_per_case",
            "cases",
            "first_case_serial",
            "cases_per_pallet",
            "pallets",
            "first_pallet_serial",
            "code_count",
            "sku",
            "bound_at",
            "production_date",
            "production_line",
            "note",
            "status",
            "status_display",
            "progress",
            "error",
            "package_sha256",
            "package_bytes",
            "max_downloads",
            "downloads",
            "password_available",
            "created_at",
            "ready_at",
        ]
        read_only_fields = fields

    def get_password_available(self, batch: Batch) -> bool:
        return bool(batch.password_wrapped)


class BatchCreateSerializer(StrictSerializer):
    bottles = serializers.IntegerField(min_value=1)
    has_inner = serializers.BooleanField(default=True)
    has_outer = serializers.BooleanField(default=True)
    bottles_per_case = serializers.IntegerField(min_value=0, default=0)
    cases_per_pallet = serializers.IntegerField(min_value=0, default=0)
    sku_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    production_date = serializers.DateField(required=False, allow_null=True, default=None)
    production_line = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    max_downloads = serializers.IntegerField(min_value=1, max_value=10, default=3)


class BindSerializer(StrictSerializer):
    sku_id = serializers.IntegerField()


class StatusSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=CodeStatus.choices)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RangeStatusSerializer(StatusSerializer):
    group = serializers.ChoiceField(choices=SerialGroup.choices)
    first_serial = serializers.IntegerField(min_value=0)
    last_serial = serializers.IntegerField(min_value=0)


class AssociationUploadSerializer(serializers.ModelSerializer[AssociationUpload]):
    class Meta:
        model = AssociationUpload
        fields = ["id", "filename", "lines", "linked", "errors", "applied", "report", "source", "created_at"]
        read_only_fields = fields


def report_summary(upload: AssociationUpload) -> dict[str, Any]:
    return dict(AssociationUploadSerializer(upload).data)


class MovementRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=[("outbound", "outbound"), ("receive", "receive")])
    dealer_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    store_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    codes = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False, max_length=1000)


class CodeStatusSerializer(StatusSerializer):
    code = serializers.CharField(max_length=200)
