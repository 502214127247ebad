"""The brand's machine API keys: the owner issues (the key is shown once), lists and revokes them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api.strict import StrictSerializer
from tenants.brand import api_keys
from tenants.brand.api.permissions import has_perm
from tenants.brand.models import ApiKey, ApiKeyScope


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "key_hint", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=64)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyListView(APIView):
    def get_permissions(self) -> list[Any]:
        perm = "brand.add_apikey" if self.request.method == "POST" else "brand.view_apikey"
        return [has_perm(perm)()]

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(ApiKey.objects.order_by("-created_at"), many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeySerializer})
    def post(self, request: Request) -> Response:
        form = ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = api_keys.issue(
            form.validated_data["name"],
            form.validated_data["scopes"],
            expires_at=form.validated_data["expires_at"],
            actor=request.user,
        )
        body = {**ApiKeySerializer(issued.key).data, "key": issued.raw}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyRevokeView(APIView):
    permission_classes = [has_perm("brand.change_apikey")]

    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeySerializer(api_keys.revoke(key_id, actor=request.user)).data)
