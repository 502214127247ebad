"""The members API of the brand console: members, their points ledger, manual points adjustments.

Thin: parse (strict serializers), authorize (the brand's Django permissions, per method), call one
service. Members are only read here (they are created by identification and changed by their own
actions); the one write is a points adjustment through commerce.services.points.adjust, idempotent
by a key the caller sends (request body or the Idempotency-Key header) and audited.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from commerce.api import member_serializers as s
from commerce.api.views import ChannelView
from commerce.errors import MemberErrorCode
from commerce.models import Member, PointsEntry
from commerce.services import members, points
from tenants.brand import audit
from tenants.brand.models import AuditAction
from tenants.errors import NotFound

_TAGS = ["members"]
_VIEW = ("commerce.view_member",)
_LEDGER = ("commerce.view_member", "commerce.view_pointsentry")
_ADJUST = ("commerce.view_member", "commerce.add_pointsentry")


def _member(member_id: int) -> Member:
    """Any member of the brand, erased ones included (they keep no personal information)."""
    member = Member.objects.filter(pk=member_id).first()
    if member is None:
        raise NotFound(MemberErrorCode.MEMBER_NOT_FOUND, _("会员不存在。"))
    return member


class MembersView(ChannelView):
    """品牌员工登录后调用（管理后台的会话）；各接口所需权限与管理后台一致，无权限返回 403
    （permission_denied）。错误为 {"code", "message"}：参数有误 400，不存在 404，状态不允许 409。"""


class MemberListView(MembersView, generics.ListAPIView[Member]):
    perms = {"GET": _VIEW}
    serializer_class = s.MemberSerializer

    def get_queryset(self) -> QuerySet[Member]:
        f = self.filters(s.MemberFilterSerializer)
        rows = Member.objects.order_by("-id")
        if f.get("q"):
            rows = rows.filter(Q(nickname__icontains=f["q"]) | Q(openid=f["q"]))
        if f.get("created_after") is not None:
            rows = rows.filter(created_at__gte=f["created_after"])
        if f.get("created_before") is not None:
            rows = rows.filter(created_at__lt=f["created_before"])
        if f.get("erased") is not None:
            rows = rows.filter(erased_at__isnull=not f["erased"])
        return rows

    @extend_schema(tags=_TAGS, summary="会员列表", parameters=[s.MemberFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class MemberDetailView(MembersView):
    perms = {"GET": _VIEW}
    serializer_class = s.MemberDetailSerializer

    @extend_schema(tags=_TAGS, summary="会员详情（含酒币余额与账本核对）")
    def get(self, request: Request, member_id: int) -> Response:
        member = _member(member_id)
        member.ledger_check = points.verify_ledger(member.pk)  # type: ignore[attr-defined]
        return self.out(member)


class MemberPointsView(MembersView, generics.ListAPIView[PointsEntry]):
    perms = {"GET": _LEDGER}
    serializer_class = s.PointsEntrySerializer

    def get_queryset(self) -> QuerySet[PointsEntry]:
        member = _member(self.kwargs["member_id"])
        f = self.filters(s.PointsFilterSerializer)
        rows = PointsEntry.objects.filter(member=member).order_by("-id")
        if f.get("kind"):
            rows = rows.filter(kind=f["kind"])
        return rows

    @extend_schema(tags=_TAGS, summary="会员的酒币流水", parameters=[s.PointsFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class MemberPointsAdjustView(MembersView):
    perms = {"GET": _ADJUST, "POST": _ADJUST}
    serializer_class = s.PointsEntrySerializer

    @extend_schema(
        tags=_TAGS,
        summary="人工调整酒币（幂等：同一幂等键重试返回同一条流水）",
        request=s.PointsAdjustSerializer,
        responses={201: s.PointsEntrySerializer, 200: s.PointsEntrySerializer},
        parameters=[
            OpenApiParameter(
                s.IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="幂等键（请求体未给出 idempotency_key 时使用）",
            )
        ],
    )
    def post(self, request: Request, member_id: int) -> Response:
        form = s.PointsAdjustSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        key = self._key(data.get("idempotency_key", ""), request.headers.get(s.IDEMPOTENCY_HEADER, ""))
        member = members.get_member(member_id)  # unknown or erased: 404
        source = f"adjustment:api:{key}"
        # A retry of an adjustment already made returns its entry (points.adjust dedupes by source)
        # and is not logged a second time.
        repeated = PointsEntry.objects.filter(member=member, source=source).exists()
        with transaction.atomic():
            entry = points.adjust(
                member.pk, data["amount"], reason=data["note"], actor=request.user.get_username(), source=source
            )
            if not repeated:
                audit.record(
                    AuditAction.UPDATE,
                    obj=member,
                    after={"points_adjustment": entry.amount, "reason": entry.note, "source": entry.source},
                    detail=_("酒币调整"),
                )
        return self.out(entry, code=status.HTTP_200_OK if repeated else status.HTTP_201_CREATED)

    @staticmethod
    def _key(body: str, header: str) -> str:
        header = header.strip()
        if body and header and body != header:
            raise serializers.ValidationError({"idempotency_key": [_("请求体与请求头中的幂等键不一致。")]})
        key = body or header
        if not key:
            raise serializers.ValidationError(
                {"idempotency_key": [_("请提供幂等键（请求体 idempotency_key 或请求头 Idempotency-Key）。")]}
            )
        try:
            return s.check_idempotency_key(key)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"idempotency_key": exc.detail}) from exc
