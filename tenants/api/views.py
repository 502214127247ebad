"""The ops API (platform host): onboard and manage brands. Thin: parse, authorize, call one service."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from tenants import code_keys, services
from tenants.api import serializers as s
from tenants.api.auth import IsPlatformStaff, OpsBasicAuthentication, OpsTokenAuthentication
from tenants.errors import NotFound, TenantErrorCode
from tenants.models import CodeSecret, Domain, OperationKind, Plan, PlatformStaff, Tenant


class OpsView(APIView):
    authentication_classes = [OpsTokenAuthentication, OpsBasicAuthentication]
    permission_classes = [IsPlatformStaff]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ops"

    @property
    def staff(self) -> PlatformStaff:
        user: object = self.request.user
        assert isinstance(user, PlatformStaff)
        return user

    @property
    def ip(self) -> str | None:
        ip: str | None = self.request.META.get("REMOTE_ADDR")
        return ip

    def brand(self, code: str) -> Tenant:
        return services.get_brand(code)


class MeView(OpsView):
    @extend_schema(responses=s.OpsMeSerializer)
    def get(self, request: Request) -> Response:
        staff = self.staff
        return Response({"username": staff.username, "display_name": staff.display_name, "role": staff.role})


class PlanListView(OpsView):
    @extend_schema(responses=s.PlanSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(s.PlanSerializer(Plan.objects.order_by("annual_fee_fen", "code"), many=True).data)


class BrandListView(OpsView):
    @extend_schema(responses=s.BrandSerializer(many=True))
    def get(self, request: Request) -> Response:
        brands = (
            Tenant.objects.select_related("plan")
            .exclude(schema_name="tenant_template")
            .prefetch_related(Prefetch("domains", queryset=Domain.objects.order_by("-is_primary", "domain")))
            .order_by("-created_at")
        )
        wanted = request.query_params.get("status")
        if wanted:
            brands = brands.filter(status=wanted)
        return Response(s.BrandSerializer(brands[:500], many=True).data)

    @extend_schema(request=s.BrandCreateSerializer, responses={202: s.BrandDetailSerializer})
    def post(self, request: Request) -> Response:
        form = s.BrandCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        created = services.create_brand(
            code=data["code"],
            name=data["name"],
            plan_code=data["plan"],
            domain=data.get("domain") or None,
            admin_username=data["admin_username"],
            admin_password=data.get("admin_password") or None,
            admin_phone=data.get("admin_phone", ""),
            contact_name=data.get("contact_name", ""),
            contact_phone=data.get("contact_phone", ""),
            requested_by=self.staff,
            ip=self.ip,
        )
        body: dict[str, Any] = dict(s.BrandDetailSerializer(created.tenant).data)
        body["admin_username"] = created.admin_username
        if created.generated_password:
            body["admin_password_once"] = created.generated_password
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BrandDetailView(OpsView):
    @extend_schema(responses=s.BrandDetailSerializer)
    def get(self, request: Request, code: str) -> Response:
        return Response(s.BrandDetailSerializer(self.brand(code)).data)


class BrandSuspendView(OpsView):
    @extend_schema(request=s.SuspendSerializer, responses=s.BrandSerializer)
    def post(self, request: Request, code: str) -> Response:
        form = s.SuspendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        tenant = services.suspend_brand(
            self.brand(code), reason=form.validated_data["reason"], actor=self.staff, ip=self.ip
        )
        return Response(s.BrandSerializer(tenant).data)


class BrandResumeView(OpsView):
    @extend_schema(request=None, responses=s.BrandSerializer)
    def post(self, request: Request, code: str) -> Response:
        tenant = services.resume_brand(self.brand(code), actor=self.staff, ip=self.ip)
        return Response(s.BrandSerializer(tenant).data)


class BrandRetryProvisioningView(OpsView):
    @extend_schema(request=None, responses={202: s.OperationSerializer})
    def post(self, request: Request, code: str) -> Response:
        op = services.retry_provisioning(self.brand(code), requested_by=self.staff, ip=self.ip)
        return Response(s.OperationSerializer(op).data, status=status.HTTP_202_ACCEPTED)


class BrandDomainView(OpsView):
    @extend_schema(request=s.DomainCreateSerializer, responses={201: s.DomainSerializer})
    def post(self, request: Request, code: str) -> Response:
        form = s.DomainCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        domain = services.add_domain(
            self.brand(code),
            form.validated_data["domain"],
            make_primary=form.validated_data["primary"],
            actor=self.staff,
            ip=self.ip,
        )
        return Response(s.DomainSerializer(domain).data, status=status.HTTP_201_CREATED)


class BrandExportView(OpsView):
    @extend_schema(request=None, responses={202: s.OperationSerializer})
    def post(self, request: Request, code: str) -> Response:
        op = services.request_export(self.brand(code), actor=self.staff, ip=self.ip)
        return Response(s.OperationSerializer(op).data, status=status.HTTP_202_ACCEPTED)


class BrandOperationView(OpsView):
    @extend_schema(responses=s.OperationSerializer)
    def get(self, request: Request, code: str, operation_id: int) -> Response:
        op = self.brand(code).operations.filter(pk=operation_id).first()
        if op is None:
            raise NotFound(TenantErrorCode.NOT_FOUND, "任务不存在。")
        return Response(s.OperationSerializer(op).data)


class BrandDeletionView(OpsView):
    @extend_schema(request=None, responses={202: s.OperationSerializer})
    def post(self, request: Request, code: str) -> Response:
        """Step one: suspend the brand and export all its data."""
        op = services.request_deletion(self.brand(code), actor=self.staff, ip=self.ip)
        body = dict(s.OperationSerializer(op).data)
        body["next"] = {
            "confirm_with": {"export_id": op.pk, "confirm_code": "<brand code>"},
            "kind": OperationKind.EXPORT,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BrandDeletionConfirmView(OpsView):
    @extend_schema(request=s.ConfirmDeletionSerializer, responses=s.BrandSerializer)
    def post(self, request: Request, code: str) -> Response:
        """Step two: with the finished export's id and the brand code typed again, delete for good."""
        form = s.ConfirmDeletionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        tenant = services.confirm_deletion(
            self.brand(code),
            export_id=form.validated_data["export_id"],
            confirm_code=form.validated_data["confirm_code"],
            actor=self.staff,
            ip=self.ip,
        )
        return Response(s.BrandSerializer(tenant).data)


class BrandCodeKeysView(OpsView):
    """The brand's code-key versions; POST rotates (new batches use the new version)."""

    @extend_schema(responses=s.CodeKeySerializer(many=True))
    def get(self, request: Request, code: str) -> Response:
        rows = CodeSecret.objects.filter(tenant=self.brand(code)).order_by("version")
        return Response(s.CodeKeySerializer(rows, many=True).data)

    @extend_schema(request=None, responses={201: s.CodeKeySerializer})
    def post(self, request: Request, code: str) -> Response:
        created = code_keys.rotate(self.brand(code), actor=self.staff, ip=self.ip)
        return Response(s.CodeKeySerializer(created).data, status=status.HTTP_201_CREATED)


class BrandCodeKeyRetireView(OpsView):
    @extend_schema(request=None, responses=s.CodeKeySerializer(many=True))
    def post(self, request: Request, code: str, version: int) -> Response:
        tenant = self.brand(code)
        code_keys.retire(tenant, version, actor=self.staff, ip=self.ip)
        rows = CodeSecret.objects.filter(tenant=tenant).order_by("version")
        return Response(s.CodeKeySerializer(rows, many=True).data)
