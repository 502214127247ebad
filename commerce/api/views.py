"""The channel API of the brand console: dealers and their areas, stores, channel staff.

Thin: parse (strict serializers), authorize (the brand's Django permissions, per method), call one
service or selector. Lists are paged (limit/offset) and filtered by query parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from commerce import selectors
from commerce.api import serializers as s
from commerce.models import ChannelStaff, Dealer, Store
from commerce.services import channel
from tenants.brand.api.permissions import has_perm

_TAGS = ["channel"]
_CHANGE_DEALER = ("commerce.change_dealer",)
_CHANGE_STORE = ("commerce.change_store",)
_CHANGE_STAFF = ("commerce.change_channelstaff",)


class ChannelView(generics.GenericAPIView[Any]):
    """Permissions by HTTP method: `perms` maps a method to the Django permissions it needs. HEAD and
    OPTIONS, and methods the view does not have (answered 405), need what GET needs. Action views
    (POST only) need their action's permission for GET as well."""

    perms: ClassVar[dict[str, tuple[str, ...]]] = {}

    def get_permissions(self) -> list[BasePermission]:
        method = (self.request.method or "GET").upper()
        needed = self.perms.get(method) or self.perms["GET"]
        return [has_perm(*needed)()]

    def filters(self, serializer_class: type[BaseSerializer[Any]]) -> dict[str, Any]:
        form = serializer_class(data=self.request.query_params)
        form.is_valid(raise_exception=True)
        return dict(form.validated_data)

    def out(self, instance: Any, *, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(instance).data, status=code)


# --- dealers ----------------------------------------------------------------------------------------


class DealerListView(ChannelView, generics.ListAPIView[Dealer]):
    perms = {"GET": ("commerce.view_dealer",), "POST": ("commerce.add_dealer",)}
    serializer_class = s.DealerSerializer

    def get_queryset(self) -> QuerySet[Dealer]:
        f = self.filters(s.DealerFilterSerializer)
        return selectors.dealers(
            search=f.get("q", ""),
            status=f.get("status", ""),
            level=f.get("level"),
            parent_id=f.get("parent"),
            region_code=f.get("region", ""),
        )

    @extend_schema(tags=_TAGS, summary="经销商列表", parameters=[s.DealerFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=_TAGS, summary="新增经销商", request=s.DealerCreateSerializer, responses={201: s.DealerSerializer}
    )
    def post(self, request: Request) -> Response:
        form = s.DealerCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        dealer = channel.create_dealer(
            code=data["code"],
            name=data["name"],
            contact_name=data["contact_name"],
            contact_phone=data["contact_phone"],
            level=data["level"],
            parent_id=data["parent"],
            areas=data["areas"],
        )
        return self.out(selectors.get_dealer(dealer.pk), code=status.HTTP_201_CREATED)


class DealerDetailView(ChannelView):
    perms = {
        "GET": ("commerce.view_dealer",),
        "PATCH": ("commerce.change_dealer",),
        "DELETE": ("commerce.delete_dealer",),
    }
    serializer_class = s.DealerSerializer

    @extend_schema(tags=_TAGS, summary="经销商详情")
    def get(self, request: Request, dealer_id: int) -> Response:
        return self.out(selectors.get_dealer(dealer_id))

    @extend_schema(
        tags=_TAGS,
        summary="修改经销商（名称、联系人、级别、上级）",
        request=s.DealerUpdateSerializer,
        responses=s.DealerSerializer,
    )
    def patch(self, request: Request, dealer_id: int) -> Response:
        form = s.DealerUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        if "parent" in changes:
            changes["parent_id"] = changes.pop("parent")
        channel.update_dealer(dealer_id, **changes)
        return self.out(selectors.get_dealer(dealer_id))

    @extend_schema(tags=_TAGS, summary="删除经销商（仅限从未有过门店、人员或业务记录的）", responses={204: None})
    def delete(self, request: Request, dealer_id: int) -> Response:
        channel.delete_dealer(dealer_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DealerAreasView(ChannelView):
    perms = {"GET": ("commerce.view_dealer",), "PUT": ("commerce.change_dealer", "commerce.change_dealerarea")}
    serializer_class = s.DealerAreasResultSerializer

    def _areas(self, dealer_id: int) -> Response:
        dealer = selectors.get_dealer(dealer_id)
        return self.out({"areas": list(dealer.areas.all())})

    @extend_schema(tags=_TAGS, summary="经销商的授权区域")
    def get(self, request: Request, dealer_id: int) -> Response:
        return self._areas(dealer_id)

    @extend_schema(
        tags=_TAGS,
        summary="设置授权区域（整体替换）",
        request=s.DealerAreasSerializer,
        responses=s.DealerAreasResultSerializer,
    )
    def put(self, request: Request, dealer_id: int) -> Response:
        form = s.DealerAreasSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        selectors.get_dealer(dealer_id)  # 404 before any check of the areas
        channel.set_dealer_areas(dealer_id, form.validated_data["areas"])
        return self._areas(dealer_id)


class DealerSuspendView(ChannelView):
    perms = {"GET": _CHANGE_DEALER, "POST": _CHANGE_DEALER}
    serializer_class = s.DealerSerializer

    @extend_schema(tags=_TAGS, summary="停用经销商", request=None, responses=s.DealerSerializer)
    def post(self, request: Request, dealer_id: int) -> Response:
        channel.suspend_dealer(dealer_id)
        return self.out(selectors.get_dealer(dealer_id))


class DealerResumeView(ChannelView):
    perms = {"GET": _CHANGE_DEALER, "POST": _CHANGE_DEALER}
    serializer_class = s.DealerSerializer

    @extend_schema(tags=_TAGS, summary="启用经销商", request=None, responses=s.DealerSerializer)
    def post(self, request: Request, dealer_id: int) -> Response:
        channel.resume_dealer(dealer_id)
        return self.out(selectors.get_dealer(dealer_id))


# --- stores -----------------------------------------------------------------------------------------


class StoreListView(ChannelView, generics.ListAPIView[Store]):
    perms = {"GET": ("commerce.view_store",), "POST": ("commerce.add_store",)}
    serializer_class = s.StoreSerializer

    def get_queryset(self) -> QuerySet[Store]:
        f = self.filters(s.StoreFilterSerializer)
        return selectors.stores(
            search=f.get("q", ""),
            status=f.get("status", ""),
            dealer_id=f.get("dealer"),
            region_code=f.get("region", ""),
        )

    @extend_schema(tags=_TAGS, summary="门店列表", parameters=[s.StoreFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=_TAGS, summary="新增门店", request=s.StoreCreateSerializer, responses={201: s.StoreSerializer})
    def post(self, request: Request) -> Response:
        form = s.StoreCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        data["dealer_id"] = data.pop("dealer")
        store = channel.create_store(**data)
        return self.out(selectors.get_store(store.pk), code=status.HTTP_201_CREATED)


class StoreDetailView(ChannelView):
    perms = {
        "GET": ("commerce.view_store",),
        "PATCH": ("commerce.change_store",),
        "DELETE": ("commerce.delete_store",),
    }
    serializer_class = s.StoreSerializer

    @extend_schema(tags=_TAGS, summary="门店详情")
    def get(self, request: Request, store_id: int) -> Response:
        return self.out(selectors.get_store(store_id))

    @extend_schema(tags=_TAGS, summary="修改门店", request=s.StoreUpdateSerializer, responses=s.StoreSerializer)
    def patch(self, request: Request, store_id: int) -> Response:
        form = s.StoreUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        if "dealer" in changes:
            changes["dealer_id"] = changes.pop("dealer")
        channel.update_store(store_id, **changes)
        return self.out(selectors.get_store(store_id))

    @extend_schema(tags=_TAGS, summary="删除门店（仅限从未有过人员或业务记录的）", responses={204: None})
    def delete(self, request: Request, store_id: int) -> Response:
        channel.delete_store(store_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StoreSuspendView(ChannelView):
    perms = {"GET": _CHANGE_STORE, "POST": _CHANGE_STORE}
    serializer_class = s.StoreSerializer

    @extend_schema(tags=_TAGS, summary="停用门店", request=None, responses=s.StoreSerializer)
    def post(self, request: Request, store_id: int) -> Response:
        channel.suspend_store(store_id)
        return self.out(selectors.get_store(store_id))


class StoreResumeView(ChannelView):
    perms = {"GET": _CHANGE_STORE, "POST": _CHANGE_STORE}
    serializer_class = s.StoreSerializer

    @extend_schema(tags=_TAGS, summary="启用门店", request=None, responses=s.StoreSerializer)
    def post(self, request: Request, store_id: int) -> Response:
        channel.resume_store(store_id)
        return self.out(selectors.get_store(store_id))


class StoreRotateQrView(ChannelView):
    perms = {"GET": _CHANGE_STORE, "POST": _CHANGE_STORE}
    serializer_class = s.StoreSerializer

    @extend_schema(tags=_TAGS, summary="更换门店码（旧码立即失效）", request=None, responses=s.StoreSerializer)
    def post(self, request: Request, store_id: int) -> Response:
        channel.rotate_store_qr_token(store_id)
        return self.out(selectors.get_store(store_id))


# --- channel staff ----------------------------------------------------------------------------------


class ChannelStaffListView(ChannelView, generics.ListAPIView[ChannelStaff]):
    perms = {"GET": ("commerce.view_channelstaff",), "POST": ("commerce.add_channelstaff",)}
    serializer_class = s.ChannelStaffSerializer

    def get_queryset(self) -> QuerySet[ChannelStaff]:
        f = self.filters(s.ChannelStaffFilterSerializer)
        return selectors.channel_staff(
            search=f.get("q", ""),
            role=f.get("role", ""),
            dealer_id=f.get("dealer"),
            store_id=f.get("store"),
            is_active=f.get("is_active"),
        )

    @extend_schema(tags=_TAGS, summary="渠道人员列表", parameters=[s.ChannelStaffFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=_TAGS,
        summary="新增渠道人员（经销商或门店的账号，不能登录管理后台）",
        request=s.ChannelStaffCreateSerializer,
        responses={201: s.ChannelStaffSerializer},
    )
    def post(self, request: Request) -> Response:
        form = s.ChannelStaffCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        staff = channel.add_channel_staff(
            role=data["role"],
            phone=data["phone"],
            dealer_id=data["dealer"],
            store_id=data["store"],
            display_name=data["display_name"],
            username=data["username"],
            password=data["password"] or None,
        )
        return self.out(selectors.get_channel_staff(staff.pk), code=status.HTTP_201_CREATED)


class ChannelStaffDetailView(ChannelView):
    perms = {"GET": ("commerce.view_channelstaff",)}
    serializer_class = s.ChannelStaffSerializer

    @extend_schema(tags=_TAGS, summary="渠道人员详情")
    def get(self, request: Request, staff_id: int) -> Response:
        return self.out(selectors.get_channel_staff(staff_id))


class ChannelStaffDeactivateView(ChannelView):
    perms = {"GET": _CHANGE_STAFF, "POST": _CHANGE_STAFF}
    serializer_class = s.ChannelStaffSerializer

    @extend_schema(tags=_TAGS, summary="停用渠道人员（账号随之停用）", request=None, responses=s.ChannelStaffSerializer)
    def post(self, request: Request, staff_id: int) -> Response:
        channel.deactivate_channel_staff(staff_id)
        return self.out(selectors.get_channel_staff(staff_id))
