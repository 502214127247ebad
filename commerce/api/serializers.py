"""Serializers of the channel API: ModelSerializers for what it returns, strict ones for what it takes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commerce.models import ChannelStaff, ChannelStatus, Dealer, DealerArea, DealerLevel, Store
from commerce.services.channel import MAX_AREAS
from tenants.api.strict import StrictSerializer
from tenants.brand.roles import CHANNEL_ROLE_NAMES

MAX_ID = 2**63 - 1  # bigint: a larger id would reach the database and fail there


def _id(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, **kwargs)


def _optional_text(max_length: int) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True)


# --- output -------------------------------------------------------------------------------------------


class DealerAreaSerializer(serializers.ModelSerializer[DealerArea]):
    full_name = serializers.CharField(read_only=True, help_text="区域全称，如 贵州省贵阳市南明区")

    class Meta:
        model = DealerArea
        fields = ["region_code", "full_name"]


class DealerSerializer(serializers.ModelSerializer[Dealer]):
    level_display = serializers.CharField(source="get_level_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    parent_code = serializers.CharField(source="parent.code", read_only=True, allow_null=True, default=None)
    areas = DealerAreaSerializer(many=True, read_only=True)

    class Meta:
        model = Dealer
        fields = [
            "id",
            "code",
            "name",
            "contact_name",
            "contact_phone",
            "level",
            "level_display",
            "parent",
            "parent_code",
            "status",
            "status_display",
            "areas",
            "created_at",
        ]


class StoreSerializer(serializers.ModelSerializer[Store]):
    dealer_code = serializers.CharField(source="dealer.code", read_only=True)
    dealer_name = serializers.CharField(source="dealer.name", read_only=True)
    region_name = serializers.CharField(read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    qr_token = serializers.SerializerMethodField(help_text="门店码令牌；仅对可修改门店的角色显示，其他角色为 null")

    class Meta:
        model = Store
        fields = [
            "id",
            "code",
            "name",
            "dealer",
            "dealer_code",
            "dealer_name",
            "region_code",
            "region_name",
            "address",
            "latitude",
            "longitude",
            "contact_name",
            "contact_phone",
            "status",
            "status_display",
            "qr_token",
            "created_at",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_qr_token(self, store: Store) -> str | None:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is not None and user.has_perm("commerce.change_store"):
            return store.qr_token
        return None


class ChannelStaffSerializer(serializers.ModelSerializer[ChannelStaff]):
    username = serializers.CharField(source="user.username", read_only=True)
    display_name = serializers.CharField(source="user.display_name", read_only=True)
    role_display = serializers.CharField(source="get_role_display", read_only=True)
    has_password = serializers.SerializerMethodField()

    class Meta:
        model = ChannelStaff
        fields = [
            "id",
            "user",
            "username",
            "display_name",
            "role",
            "role_display",
            "dealer",
            "store",
            "phone",
            "is_active",
            "has_password",
            "created_at",
        ]

    def get_has_password(self, staff: ChannelStaff) -> bool:
        return bool(staff.user.has_usable_password())


# --- input ----------------------------------------------------------------------------------------------


class DealerCreateSerializer(StrictSerializer):
    code = _text(32, help_text="经销商编码：字母、数字、- 或 _，不区分大小写（保存为大写）")
    name = _text(100)
    contact_name = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    contact_phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    level = serializers.ChoiceField(choices=DealerLevel.choices, default=DealerLevel.FIRST)
    parent = _id(required=False, allow_null=True, default=None, help_text="上级经销商 ID（二级经销商必填）")  # type: ignore[assignment]
    areas = serializers.ListField(
        child=_text(20),
        required=False,
        default=list,
        max_length=MAX_AREAS,
        help_text="授权区域：GB/T 2260 代码，省、市或区县均可",
    )


class DealerUpdateSerializer(StrictSerializer):
    name = _text(100, required=False)
    contact_name = _optional_text(50)
    contact_phone = _optional_text(20)
    level = serializers.ChoiceField(choices=DealerLevel.choices, required=False)
    parent = _id(required=False, allow_null=True)  # type: ignore[assignment]  # a field, not Field.parent


class DealerAreasSerializer(StrictSerializer):
    areas = serializers.ListField(
        child=_text(20), allow_empty=True, max_length=MAX_AREAS, help_text="新的授权区域（整体替换）；空表示不限区域"
    )


class DealerAreasResultSerializer(serializers.Serializer[Any]):
    areas = DealerAreaSerializer(many=True)


class _Coordinate(serializers.DecimalField):
    def __init__(self, limit: int, **kwargs: Any) -> None:
        super().__init__(max_digits=None, decimal_places=None, min_value=-limit, max_value=limit, **kwargs)


class StoreCreateSerializer(StrictSerializer):
    code = _text(32, help_text="门店编码：字母、数字、- 或 _，不区分大小写（保存为大写）")
    name = _text(100)
    dealer = _id(help_text="供货经销商 ID（须为正常状态）")
    region_code = _text(20, help_text="所在区域：GB/T 2260 区县代码（或不设区县的市）")
    address = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    latitude = _Coordinate(90, required=False, allow_null=True, default=None)
    longitude = _Coordinate(180, required=False, allow_null=True, default=None)
    contact_name = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    contact_phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")


class StoreUpdateSerializer(StrictSerializer):
    name = _text(100, required=False)
    dealer = _id(required=False)
    region_code = _text(20, required=False)
    address = _optional_text(200)
    latitude = _Coordinate(90, required=False, allow_null=True)
    longitude = _Coordinate(180, required=False, allow_null=True)
    contact_name = _optional_text(50)
    contact_phone = _optional_text(20)


class ChannelStaffCreateSerializer(StrictSerializer):
    role = _text(32, help_text="、".join(f"{role.value}（{name}）" for role, name in CHANNEL_ROLE_NAMES.items()))
    phone = _text(20)
    dealer = _id(required=False, allow_null=True, default=None, help_text="经销商人员必填")
    store = _id(required=False, allow_null=True, default=None, help_text="门店人员必填")
    display_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    username = serializers.CharField(
        max_length=150, required=False, allow_blank=True, default="", help_text="默认为手机号"
    )
    password = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        trim_whitespace=False,
        help_text="不填则暂不能用密码登录",
    )


# --- list filters (query parameters; paging parameters come along, so not strict) ------------------


class DealerFilterSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=100, required=False, help_text="编码、名称或联系人")
    status = serializers.ChoiceField(choices=ChannelStatus.choices, required=False)
    level = serializers.ChoiceField(choices=DealerLevel.choices, required=False)
    parent = _id(required=False, help_text="上级经销商 ID")  # type: ignore[assignment]
    region = serializers.CharField(max_length=6, required=False, help_text="授权区域在此区域内或包含此区域")


class StoreFilterSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=100, required=False, help_text="编码、名称、地址或联系人")
    status = serializers.ChoiceField(choices=ChannelStatus.choices, required=False)
    dealer = _id(required=False)
    region = serializers.CharField(max_length=6, required=False, help_text="所在区域在此区域内（省、市或区县）")


class ChannelStaffFilterSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=100, required=False, help_text="手机号、用户名或姓名")
    role = serializers.ChoiceField(choices=[(r.value, n) for r, n in CHANNEL_ROLE_NAMES.items()], required=False)
    dealer = _id(required=False)
    store = _id(required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
