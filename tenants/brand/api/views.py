"""The brand console API (brand host). Thin: parse, authorize, call one service."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.db.models import Prefetch, QuerySet
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.brand import services
from tenants.brand.api import serializers as s
from tenants.brand.api.permissions import IsBrandStaff, has_perm
from tenants.brand.models import AuditEntry, BrandProfile, User
from tenants.errors import JiumaError


class SiteView(APIView):
    """What consumer pages show of the brand. Public."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(responses=s.SiteSerializer)
    def get(self, request: Request) -> Response:
        profile = BrandProfile.objects.filter(id=1).first()
        if profile is None:
            return Response({"code": "not_found", "message": _("品牌资料尚未设置。")}, status=404)
        return Response(s.SiteSerializer(profile).data)


class LoginView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=s.LoginSerializer, responses=s.StaffSerializer)
    def post(self, request: Request) -> Response:
        form = s.LoginSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = authenticate(
            request._request, username=form.validated_data["username"], password=form.validated_data["password"]
        )
        if user is None or not getattr(user, "is_staff", False):
            raise JiumaError("login_failed", _("用户名或密码错误。"), status=400)
        login(request._request, user)
        return Response(s.StaffSerializer(user).data)


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CsrfView(APIView):
    """Sets the CSRF cookie for a console page that is about to log in."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: inline_serializer("CsrfCookie", {"ok": serializers.BooleanField()})})
    @method_decorator(ensure_csrf_cookie)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class MeView(APIView):
    permission_classes = [IsBrandStaff]

    @extend_schema(
        responses=inline_serializer("Me", {"permissions": serializers.ListField(child=serializers.CharField())})
    )
    def get(self, request: Request) -> Response:
        data = dict(s.StaffSerializer(request.user).data)  # type: ignore[arg-type]  # IsBrandStaff ran
        data["permissions"] = sorted(request.user.get_all_permissions())
        return Response(data)


class ProfileView(APIView):
    permission_classes = [has_perm("brand.change_brandprofile")]

    @extend_schema(request=s.ProfileUpdateSerializer, responses=s.SiteSerializer)
    def patch(self, request: Request) -> Response:
        form = s.ProfileUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        profile = services.update_profile(**form.validated_data)
        return Response(s.SiteSerializer(profile).data)


def _staff_queryset() -> QuerySet[User]:
    # Brand staff only: the accounts of dealers' and stores' people are listed by the channel API.
    return User.objects.filter(is_staff=True).prefetch_related(Prefetch("groups")).order_by("id")


class StaffListView(APIView):
    def get_permissions(self):  # type: ignore[no-untyped-def]
        perm = "brand.view_user" if self.request.method == "GET" else "brand.add_user"
        return [has_perm(perm)()]

    @extend_schema(responses=s.StaffSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(s.StaffSerializer(_staff_queryset(), many=True).data)

    @extend_schema(request=s.StaffCreateSerializer, responses={201: s.StaffSerializer})
    def post(self, request: Request) -> Response:
        form = s.StaffCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = services.create_staff(**form.validated_data)
        return Response(s.StaffSerializer(user).data, status=status.HTTP_201_CREATED)


class StaffRoleView(APIView):
    permission_classes = [has_perm("brand.change_user")]

    @extend_schema(request=s.RoleSerializer, responses=s.StaffSerializer)
    def post(self, request: Request, user_id: int) -> Response:
        form = s.RoleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = services.set_staff_role(user_id, form.validated_data["role"])
        return Response(s.StaffSerializer(user).data)


class StaffDeactivateView(APIView):
    permission_classes = [has_perm("brand.change_user")]

    @extend_schema(request=None, responses=s.StaffSerializer)
    def post(self, request: Request, user_id: int) -> Response:
        return Response(s.StaffSerializer(services.deactivate_staff(user_id)).data)


class AuditListView(generics.ListAPIView[AuditEntry]):
    permission_classes = [has_perm("brand.browse_audit")]
    serializer_class = s.AuditEntrySerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = AuditEntry.objects.all()
        params = self.request.query_params
        if params.get("action"):
            qs = qs.filter(action=params["action"])
        if params.get("actor"):
            qs = qs.filter(actor_name=params["actor"])
        if params.get("object_type"):
            qs = qs.filter(object_type=params["object_type"])
        return qs
