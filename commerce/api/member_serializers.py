"""Serializers of the members API: ModelSerializers for what it returns, strict ones for what it takes.

A member's phone number is only ever shown masked (the hint kept next to the wrapped number, e.g.
138****1234); the number itself is never unwrapped here.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from commerce.models import Member, PointsEntry, PointsKind
from commerce.services.points import MAX_AMOUNT
from tenants.api.strict import StrictSerializer

# An idempotency key: what the console generates per adjustment (a UUID, say). It becomes part of the
# ledger entry's source ("adjustment:api:<key>"), at most 80 characters in all.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,64}")
IDEMPOTENCY_HEADER = "Idempotency-Key"


def check_idempotency_key(value: str) -> str:
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise serializers.ValidationError(_("幂等键须为 8–64 位字母、数字或 _ . : -。"), code="invalid")
    return value


# --- output -------------------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer[Member]):
    phone = serializers.CharField(
        source="phone_hint", read_only=True, help_text="脱敏手机号，如 138****1234；未绑定为空字符串"
    )
    is_erased = serializers.BooleanField(read_only=True, help_text="会员已按本人要求注销（个人信息已删除）")

    class Meta:
        model = Member
        fields = [
            "id",
            "openid",
            "nickname",
            "avatar_url",
            "phone",
            "points_balance",
            "created_at",
            "last_seen_at",
            "is_erased",
            "erased_at",
        ]
        read_only_fields = fields
        extra_kwargs = {"points_balance": {"help_text": "酒币余额"}, "openid": {"help_text": "公众号 OpenID"}}


class LedgerCheckSerializer(serializers.Serializer[Any]):
    balance = serializers.IntegerField(help_text="会员记录上的余额")
    ledger_sum = serializers.IntegerField(help_text="全部流水数量之和")
    open_credits = serializers.IntegerField(help_text="未使用的获得记录之和")
    ok = serializers.BooleanField(help_text="三者一致且不为负")


class MemberDetailSerializer(MemberSerializer):
    ledger = LedgerCheckSerializer(source="ledger_check", read_only=True, help_text="酒币账本核对结果")

    class Meta(MemberSerializer.Meta):
        fields = [*MemberSerializer.Meta.fields, "ledger"]
        read_only_fields = fields


class PointsEntrySerializer(serializers.ModelSerializer[PointsEntry]):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = PointsEntry
        fields = [
            "id",
            "member",
            "kind",
            "kind_display",
            "amount",
            "balance_after",
            "source",
            "remaining",
            "expires_at",
            "note",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "amount": {"help_text": "正数为增加，负数为扣减"},
            "remaining": {"help_text": "获得记录尚未使用（未过期、未扣减）的数量"},
        }


# --- input ----------------------------------------------------------------------------------------------


class PointsAdjustSerializer(StrictSerializer):
    amount = serializers.IntegerField(
        min_value=-MAX_AMOUNT,
        max_value=MAX_AMOUNT,
        help_text="调整数量：正数增加，负数扣减（余额不会低于 0）；不能为 0",
    )
    note = serializers.CharField(max_length=200, help_text="调整原因（记入流水与审计日志）")
    idempotency_key = serializers.CharField(
        max_length=64,
        required=False,
        help_text=f"幂等键（8–64 位）：重试同一调整时保持不变；也可放在请求头 {IDEMPOTENCY_HEADER}",
    )

    def validate_amount(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError(_("调整数量不能为 0。"), code="invalid")
        return value

    def validate_idempotency_key(self, value: str) -> str:
        return check_idempotency_key(value)


# --- list filters (query parameters; paging parameters come along, so not strict) ------------------


class MemberFilterSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=64, required=False, help_text="昵称（包含）或 OpenID（完全一致）")
    created_after = serializers.DateTimeField(required=False, help_text="注册时间不早于（ISO 8601）")
    created_before = serializers.DateTimeField(required=False, help_text="注册时间早于（ISO 8601）")
    erased = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="是否已注销")


class PointsFilterSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=PointsKind.choices, required=False, help_text="流水类型")
