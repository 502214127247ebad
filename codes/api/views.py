"""Codes API: batches (create, progress, password once, download, bind, status), code status
ranges and association uploads. Thin: every decision is in codes.services / codes.association."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from codes import association, channel, qr, services
from codes.api import serializers as s
from codes.api.permissions import staff_or_key
from codes.keyring import keyring
from codes.models import AssociationUpload, Batch, MovementKind, SerialGroup
from commerce.models import ChannelStatus, Dealer, Sku, Store
from tenants.api.parsers import JSONParser
from tenants.brand.api.permissions import has_perm
from tenants.brand.api_keys import ApiKeyAuthentication
from tenants.brand.models import ApiKeyScope
from tenants.errors import JiumaError

AUTH = [ApiKeyAuthentication, SessionAuthentication]


class BatchListView(APIView):
    authentication_classes = AUTH

    def get_permissions(self):  # type: ignore[no-untyped-def]
        if self.request.method == "POST":
            return [has_perm("codes.add_batch")()]
        return [staff_or_key("codes.view_batch", ApiKeyScope.BATCHES_READ)()]

    @extend_schema(responses=s.BatchSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = Batch.objects.select_related("sku").order_by("-created_at")[:200]
        return Response(s.BatchSerializer(rows, many=True).data)

    @extend_schema(request=s.BatchCreateSerializer, responses={201: s.BatchSerializer})
    def post(self, request: Request) -> Response:
        form = s.BatchCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = services.create_batch(services.BatchRequest(**form.validated_data), actor=request.user)
        return Response(s.BatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class BatchDetailView(APIView):
    authentication_classes = AUTH
    permission_classes = [staff_or_key("codes.view_batch", ApiKeyScope.BATCHES_READ)]

    @extend_schema(responses=s.BatchSerializer)
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(s.BatchSerializer(get_object_or_404(Batch, pk=batch_id)).data)


class BatchPasswordView(APIView):
    """The package password, once: the response is the only place it ever appears."""

    permission_classes = [has_perm("codes.download_batch")]

    @extend_schema(request=None, responses={200: OpenApiResponse(description="{'password': ...}")})
    def post(self, request: Request, batch_id: int) -> Response:
        batch = get_object_or_404(Batch, pk=batch_id)
        password = services.reveal_password(batch, actor=request.user)
        response = Response({"password": password, "message": _("请立即记录密码，关闭后将无法再次查看。")})
        response["Cache-Control"] = "no-store"
        return response


class BatchDownloadView(APIView):
    permission_classes = [has_perm("codes.download_batch")]

    @extend_schema(responses={200: OpenApiResponse(description="the encrypted zip")})
    def get(self, request: Request, batch_id: int) -> FileResponse:
        batch = get_object_or_404(Batch, pk=batch_id)
        handle = services.open_download(batch, actor=request.user)
        response = FileResponse(handle, as_attachment=True, filename=f"{batch.number}.zip")
        response["Cache-Control"] = "no-store"
        return response


class BatchBindView(APIView):
    permission_classes = [has_perm("codes.change_batch")]

    @extend_schema(request=s.BindSerializer, responses=s.BatchSerializer)
    def post(self, request: Request, batch_id: int) -> Response:
        form = s.BindSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = get_object_or_404(Batch, pk=batch_id)
        sku = get_object_or_404(Sku, pk=form.validated_data["sku_id"], is_active=True)
        return Response(s.BatchSerializer(services.bind_sku(batch, sku, actor=request.user)).data)


class BatchStatusView(APIView):
    permission_classes = [has_perm("codes.add_statusrule")]

    @extend_schema(request=s.StatusSerializer, responses={201: None})
    def post(self, request: Request, batch_id: int) -> Response:
        form = s.StatusSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = get_object_or_404(Batch, pk=batch_id)
        rules = services.set_batch_status(
            batch, form.validated_data["status"], reason=form.validated_data["reason"], actor=request.user
        )
        return Response({"rules": [rule.pk for rule in rules]}, status=status.HTTP_201_CREATED)


class RangeStatusView(APIView):
    permission_classes = [has_perm("codes.add_statusrule")]

    @extend_schema(request=s.RangeStatusSerializer, responses={201: None})
    def post(self, request: Request) -> Response:
        form = s.RangeStatusSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        rule = services.set_status(
            SerialGroup(data["group"]),
            data["first_serial"],
            data["last_serial"],
            data["status"],
            reason=data["reason"],
            actor=request.user,
        )
        return Response({"rule": rule.pk}, status=status.HTTP_201_CREATED)


class AssociationUploadView(APIView):
    """A packing-line file: multipart `file`, or the CSV itself as the body (text/csv)."""

    authentication_classes = AUTH
    permission_classes = [staff_or_key("codes.add_codelink", ApiKeyScope.ASSOCIATIONS_WRITE)]
    parser_classes = [MultiPartParser, FileUploadParser, JSONParser]

    @extend_schema(
        request={
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
        responses={201: s.AssociationUploadSerializer, 200: s.AssociationUploadSerializer, 400: None},
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            return Response(
                {"code": "invalid_upload", "message": _("请上传 CSV 文件（字段名 file）。")},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if upload.size is not None and upload.size > association.MAX_BYTES:
            return Response(
                {"code": "invalid_upload", "message": _("文件过大（上限 20 MB），请分批上传。")},
                status=status.HTTP_400_BAD_REQUEST,
            )
        source = str(getattr(request.user, "username", "upload")) if request.auth else "upload"
        result = association.upload(upload.read(), filename=upload.name or "", source=source, actor=request.user)
        body = s.report_summary(result.upload)
        if not result.upload.applied:
            message = _("文件中有 %(count)s 行有误，整份文件未生效，请修改后重新上传。") % {
                "count": result.upload.errors
            }
            return Response(
                {"code": "association_rejected", "message": message, **body}, status=status.HTTP_400_BAD_REQUEST
            )
        body["repeated"] = result.repeated
        return Response(body, status=status.HTTP_200_OK if result.repeated else status.HTTP_201_CREATED)


class AssociationDetailView(APIView):
    authentication_classes = AUTH
    permission_classes = [staff_or_key("codes.view_codelink", ApiKeyScope.ASSOCIATIONS_WRITE)]

    @extend_schema(responses=s.AssociationUploadSerializer)
    def get(self, request: Request, upload_id: int) -> Response:
        return Response(s.report_summary(get_object_or_404(AssociationUpload, pk=upload_id)))


class MovementView(APIView):
    """Outbound to a dealer or receiving into a store: scanned case/pallet codes, a result per code."""

    authentication_classes = AUTH
    permission_classes = [staff_or_key("codes.add_movement", ApiKeyScope.OUTBOUND_WRITE)]

    @extend_schema(request=s.MovementRequestSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        form = s.MovementRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        kind = MovementKind(data["kind"])
        dealer = store = None
        if kind == MovementKind.OUTBOUND:
            dealer = Dealer.objects.filter(pk=data["dealer_id"], status=ChannelStatus.ACTIVE).first()
            if dealer is None:
                raise JiumaError("invalid_movement", _("请选择有效的经销商。"), fields={"dealer_id": data["dealer_id"]})
        else:
            store = (
                Store.objects.select_related("dealer").filter(pk=data["store_id"], status=ChannelStatus.ACTIVE).first()
            )
            if store is None or store.dealer.status != ChannelStatus.ACTIVE:
                raise JiumaError("invalid_movement", _("请选择有效的门店。"), fields={"store_id": data["store_id"]})
        by_name = str(getattr(request.user, "username", ""))
        source = "api" if request.auth is not None else "terminal"
        results = []
        for text in data["codes"]:
            result = channel.record_movement(text, kind, dealer=dealer, store=store, by_name=by_name, source=source)
            results.append(
                {"code": text, "outcome": str(result.outcome), "message": result.message, "bottles": result.bottles}
            )
        recorded = sum(1 for item in results if item["outcome"] in ("recorded", "dealer_mismatch"))
        return Response({"recorded": recorded, "results": results})


class BatchQrView(APIView):
    """A PNG QR image of one code of the batch (`kind` inner/outer/case/pallet, `index` in the batch)."""

    permission_classes = [has_perm("codes.view_batch")]

    @extend_schema(responses={200: OpenApiResponse(description="image/png")})
    def get(self, request: Request, batch_id: int) -> HttpResponse:
        batch = get_object_or_404(Batch, pk=batch_id)
        kinds = {kind.name.lower(): kind for kind in batch.kinds}
        kind = kinds.get(str(request.query_params.get("kind", "outer")).lower())
        index_text = str(request.query_params.get("index", "0"))
        serials = batch.serial_range(SerialGroup.of(kind)) if kind is not None else range(0)
        if kind is None or not index_text.isdigit() or int(index_text) >= len(serials):
            raise JiumaError(
                "invalid_code_request", _("该批次没有这个码。"), fields={"kind": request.query_params.get("kind")}
            )
        key = _key_of(batch)
        image = qr.png(qr.qr_image(qr.code_url(key, kind, serials.start + int(index_text))))
        return HttpResponse(image, content_type="image/png")


class BatchProofView(APIView):
    """A proof sheet (PNG) of the first codes of each kind, for the printer to check before a run."""

    permission_classes = [has_perm("codes.view_batch")]

    @extend_schema(responses={200: OpenApiResponse(description="image/png")})
    def get(self, request: Request, batch_id: int) -> HttpResponse:
        batch = get_object_or_404(Batch, pk=batch_id)
        key = _key_of(batch)
        response = HttpResponse(qr.png(qr.proof_sheet(batch, key)), content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="{batch.number}-proof.png"'
        return response


def _key_of(batch: Batch) -> Any:
    """The code key the batch was made with (503 if this process cannot unwrap it)."""
    key = keyring.key(services.current_tenant().number, batch.key_version)
    if key is None:
        raise JiumaError("key_unavailable", _("赋码密钥不可用，请联系平台。"), status=503)
    return key


class CodeStatusView(APIView):
    """Freeze, void or blacklist one code given as printed (the code or its scan URL)."""

    permission_classes = [has_perm("codes.add_statusrule")]

    @extend_schema(request=s.CodeStatusSerializer, responses={201: None})
    def post(self, request: Request) -> Response:
        form = s.CodeStatusSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        rule = services.set_code_status(data["code"], data["status"], reason=data["reason"], actor=request.user)
        return Response(
            {"rule": rule.pk, "group": rule.group, "serial": rule.first_serial}, status=status.HTTP_201_CREATED
        )
