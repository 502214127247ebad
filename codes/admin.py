"""Brand console pages for codes: batches (create, progress, password once, download, status),
association uploads with their reports, outbound/receiving records, diversion alerts (with CSV
export) and a trace page that shows a code's whole chain. Writes go through the services."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from codes import association, services
from codes import format as code_format
from codes.keyring import check
from codes.models import (
    AssociationUpload,
    Batch,
    BatchStatus,
    CodeStatus,
    CodeSummary,
    DiversionAlert,
    Movement,
    Scan,
    SerialGroup,
    StatusRule,
)
from tenants.brand import audit
from tenants.brand.admin import AuditedModelAdmin, site
from tenants.errors import JiumaError


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records nobody edits by hand: written by services only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BatchCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Batch
        fields = [
            "bottles",
            "has_inner",
            "has_outer",
            "bottles_per_case",
            "cases_per_pallet",
            "sku",
            "production_date",
            "production_line",
            "note",
            "max_downloads",
        ]


@admin.register(Batch, site=site)
class BatchAdmin(AuditedModelAdmin):
    list_display = ("number", "sku", "bottles", "cases", "pallets", "status_badge", "downloads_text", "created_at")
    list_filter = ("status", "sku", "production_date")
    search_fields = ("number", "production_line", "note")
    actions = ["activate", "freeze", "void"]
    readonly_fields = [
        "number",
        "key_version",
        "first_bottle_serial",
        "cases",
        "first_case_serial",
        "pallets",
        "first_pallet_serial",
        "status",
        "progress",
        "error",
        "package_sha256",
        "package_bytes",
        "downloads",
        "created_at",
        "ready_at",
        "package_links",
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = BatchCreateForm
            kwargs["fields"] = BatchCreateForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return BatchCreateForm.Meta.fields
        return [*self.readonly_fields, "sku", "bottles", "bottles_per_case", "cases_per_pallet", "note"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        editable_sku = obj.sku_id is None  # 空码赋值: a blank batch can be bound once
        return [*self.readonly_fields, "bottles", "bottles_per_case", "cases_per_pallet", "note"] + (
            [] if editable_sku else ["sku"]
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            sku = data.get("sku")
            if sku is not None and Batch.objects.filter(pk=obj.pk, sku__isnull=True).exists():
                services.bind_sku(obj, sku, actor=request.user)
            return
        request_ = services.BatchRequest(
            bottles=data["bottles"],
            has_inner=data["has_inner"],
            has_outer=data["has_outer"],
            bottles_per_case=data["bottles_per_case"],
            cases_per_pallet=data["cases_per_pallet"],
            sku_id=data["sku"].pk if data.get("sku") else None,
            production_date=data.get("production_date"),
            production_line=data.get("production_line", ""),
            note=data.get("note", ""),
            max_downloads=data["max_downloads"],
        )
        created = services.create_batch(request_, actor=request.user)
        obj.pk = created.pk
        obj.number = created.number

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except JiumaError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(request.path)

    @admin.display(description=gettext_lazy("状态"))
    def status_badge(self, batch: Batch) -> str:
        if batch.status == BatchStatus.GENERATING:
            return f"{batch.get_status_display()} {batch.progress}%"
        return str(batch.get_status_display())

    @admin.display(description=gettext_lazy("下载"))
    def downloads_text(self, batch: Batch) -> str:
        return f"{batch.downloads}/{batch.max_downloads}"

    @admin.display(description=gettext_lazy("印刷包"))
    def package_links(self, batch: Batch) -> str:
        if batch.status != BatchStatus.READY:
            return _("生成中，进度 %(p)s%%（刷新页面查看）") % {"p": batch.progress}
        links = []
        if batch.password_wrapped:
            links.append(
                format_html(
                    '<a class="button" href="{}">{}</a>',
                    reverse("admin:codes_batch_password", args=[batch.pk]),
                    _("查看解压密码（仅一次）"),
                )
            )
        if batch.downloads < batch.max_downloads:
            links.append(
                format_html(
                    '<a class="button" href="{}">{}</a>',
                    reverse("admin:codes_batch_download", args=[batch.pk]),
                    _("下载印刷包"),
                )
            )
        return format_html(" ".join(["{}"] * len(links)), *links) if links else _("下载次数已用完")

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:batch_id>/password/", self.admin_site.admin_view(self.password_view), name="codes_batch_password"
            ),
            path(
                "<int:batch_id>/download/", self.admin_site.admin_view(self.download_view), name="codes_batch_download"
            ),
        ]
        return own + super().get_urls()

    def password_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        if not request.user.has_perm("codes.download_batch"):
            self.message_user(request, _("没有权限执行此操作。"), messages.ERROR)
            return redirect("admin:codes_batch_changelist")
        batch = get_object_or_404(Batch, pk=batch_id)
        try:
            password = services.reveal_password(batch, actor=request.user)
        except JiumaError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request, _("印刷包解压密码：%(p)s（仅显示这一次，请立即记录）") % {"p": password}, messages.WARNING
            )
        return redirect("admin:codes_batch_change", batch_id)

    def download_view(self, request: HttpRequest, batch_id: int) -> HttpResponse | FileResponse:
        if not request.user.has_perm("codes.download_batch"):
            self.message_user(request, _("没有权限执行此操作。"), messages.ERROR)
            return redirect("admin:codes_batch_changelist")
        batch = get_object_or_404(Batch, pk=batch_id)
        try:
            handle = services.open_download(batch, actor=request.user)
        except JiumaError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:codes_batch_change", batch_id)
        return FileResponse(handle, as_attachment=True, filename=f"{batch.number}.zip")

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Batch], status: CodeStatus) -> None:
        if not request.user.has_perm("codes.add_statusrule"):
            self.message_user(request, _("没有权限执行此操作。"), messages.ERROR)
            return
        for batch in queryset:
            services.set_batch_status(batch, status, actor=request.user)
        self.message_user(request, _("已更新 %(n)s 个批次。") % {"n": queryset.count()})

    @admin.action(description=gettext_lazy("激活所选批次"))
    def activate(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, CodeStatus.ACTIVE)

    @admin.action(description=gettext_lazy("冻结所选批次"))
    def freeze(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, CodeStatus.FROZEN)

    @admin.action(description=gettext_lazy("作废所选批次"))
    def void(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, CodeStatus.VOID)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # codes were printed: a batch is voided, never deleted


@admin.register(StatusRule, site=site)
class StatusRuleAdmin(ReadOnlyAdmin):
    list_display = ("group", "first_serial", "last_serial", "status", "reason", "created_at")
    list_filter = ("status", "group")


class AssociationUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("关联文件（CSV：父码,子码）"))


@admin.register(AssociationUpload, site=site)
class AssociationUploadAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "filename", "lines", "linked", "errors", "applied", "source")
    list_filter = ("applied",)
    readonly_fields = ("filename", "lines", "linked", "errors", "applied", "source", "created_at", "report_table")
    fields = readonly_fields
    change_list_template = "admin/codes/associationupload/change_list.html"

    @admin.display(description=gettext_lazy("逐行报告（前 500 行）"))
    def report_table(self, upload: AssociationUpload) -> str:
        rows = [entry for entry in upload.report if entry.get("status") not in ("linked", "already")][:500]
        if not rows:
            return _("全部通过。")
        return format_html(
            "<table>{}</table>",
            format_html(
                "".join(["<tr><td>{}</td><td>{}</td><td>{}</td></tr>"] * len(rows)),
                *[value for entry in rows for value in (entry["line"], entry["status"], entry.get("message", ""))],
            ),
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(
            request.user.has_perm("codes.view_codelink") or request.user.has_perm("codes.view_associationupload")
        )

    def get_urls(self) -> list[Any]:
        own = [path("upload/", self.admin_site.admin_view(self.upload_view), name="codes_association_upload")]
        return own + super().get_urls()

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("codes.add_codelink"):
            self.message_user(request, _("没有权限执行此操作。"), messages.ERROR)
            return redirect("admin:codes_associationupload_changelist")
        form = AssociationUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = association.upload(upload.read(), filename=upload.name, actor=request.user)
            except JiumaError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                record = result.upload
                if result.repeated:
                    self.message_user(request, _("该文件已上传过，未重复关联。"), messages.INFO)
                elif record.applied:
                    self.message_user(request, _("已关联 %(n)s 条。") % {"n": record.linked}, messages.SUCCESS)
                else:
                    self.message_user(
                        request, _("文件中有 %(n)s 行有误，整份文件未生效。") % {"n": record.errors}, messages.ERROR
                    )
                return redirect("admin:codes_associationupload_change", record.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("上传关联文件"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/codes/associationupload/upload.html", context)


@admin.register(Movement, site=site)
class MovementAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "group", "serial", "dealer", "store", "by_name", "source")
    list_filter = ("kind", "dealer")
    list_select_related = ("dealer", "store")
    date_hierarchy = "at"


@admin.register(DiversionAlert, site=site)
class DiversionAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "severity", "dealer", "serial", "scan_region_name", "scanned_at", "handled_at")
    list_filter = ("severity", "dealer", ("handled_at", admin.EmptyFieldListFilter))
    list_select_related = ("dealer",)
    readonly_fields = (
        "severity",
        "dealer",
        "serial",
        "case_serial",
        "outbound_at",
        "scanned_at",
        "scan_region_code",
        "evidence",
        "handled_at",
        "handled_note",
    )
    actions = ["mark_handled", "export_csv"]

    @admin.display(description=gettext_lazy("扫码地区"))
    def scan_region_name(self, alert: DiversionAlert) -> str:
        return str(alert.evidence.get("scan", {}).get("region", alert.scan_region_code))

    @admin.action(description=gettext_lazy("标记为已处理"))
    def mark_handled(self, request: HttpRequest, queryset: QuerySet[DiversionAlert]) -> None:
        if not request.user.has_perm("codes.change_diversionalert"):
            self.message_user(request, _("没有权限执行此操作。"), messages.ERROR)
            return
        ids = list(queryset.filter(handled_at__isnull=True).values_list("pk", flat=True))
        DiversionAlert.objects.filter(pk__in=ids).update(handled_at=timezone.now(), handled_note=_("已在后台处理"))
        audit.record(
            "update", object_type="codes.diversionalert", object_repr=f"{len(ids)} alerts", detail="mark handled"
        )
        self.message_user(request, _("已处理 %(n)s 条预警。") % {"n": len(ids)})

    @admin.action(description=gettext_lazy("导出 CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[DiversionAlert]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="diversion-alerts.csv"'
        response.write("\ufeff")  # Excel opens UTF-8 CSV correctly with a BOM
        writer = csv.writer(response)
        writer.writerow(
            ["预警时间", "级别", "经销商", "瓶序号", "箱序号", "出库时间", "扫码时间", "扫码地区", "已处理"]
        )
        for alert in queryset.select_related("dealer"):
            writer.writerow(
                [
                    timezone.localtime(alert.created_at).strftime("%Y-%m-%d %H:%M"),
                    alert.get_severity_display(),
                    alert.dealer.name,
                    alert.serial,
                    alert.case_serial or "",
                    timezone.localtime(alert.outbound_at).strftime("%Y-%m-%d %H:%M"),
                    timezone.localtime(alert.scanned_at).strftime("%Y-%m-%d %H:%M"),
                    self.scan_region_name(alert),
                    "是" if alert.handled_at else "否",
                ]
            )
        return response


class NoCountPaginator(Paginator):  # type: ignore[type-arg]
    """The scans table grows to billions of rows: never count it."""

    @cached_property
    def count(self) -> int:
        return 10**9


@admin.register(Scan, site=site)
class ScanAdmin(ReadOnlyAdmin):
    list_display = ("scanned_at", "kind", "serial", "region_code", "ip", "is_first", "source")
    paginator = NoCountPaginator
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(CodeSummary, site=site)
class CodeSummaryAdmin(ReadOnlyAdmin):
    list_display = ("kind", "serial", "first_scanned_at", "first_region_code", "scan_count", "last_scanned_at")
    paginator = NoCountPaginator
    show_full_result_count = False


def trace(request: HttpRequest) -> HttpResponse:
    """码追溯: everything known of one code, from batch to scans."""
    text = request.GET.get("code", "").strip()
    context: dict[str, Any] = {**site.each_context(request), "title": _("码追溯"), "query": text}
    if text:
        from codes.channel import channel_of_bottle

        tenant = getattr(request, "tenant", None)
        code = check(code_format.from_scan(text), tenant_number=getattr(tenant, "number", None))
        if code is None:
            context["error"] = _("不是本品牌的有效码。")
        else:
            group = SerialGroup.of(code.kind)
            context.update(
                code=code,
                group=group,
                batch=services.batch_of(group, code.serial),
                rule=services.rule_of(group, code.serial),
                parent=association.parent_of(group, code.serial),
                channel=channel_of_bottle(code.serial) if group == SerialGroup.BOTTLE else None,
                movements=Movement.objects.filter(group=group, serial=code.serial)
                .select_related("dealer", "store")
                .order_by("-at")[:50],
                scans=Scan.objects.filter(kind=int(code.kind), serial=code.serial).order_by("-scanned_at")[:50],
                alerts=DiversionAlert.objects.filter(serial=code.serial).select_related("dealer")
                if group == SerialGroup.BOTTLE
                else [],
            )
    return TemplateResponse(request, "admin/codes/trace.html", context)


def _register_trace() -> None:
    original = site.get_urls

    def get_urls() -> list[Any]:
        return [path("codes/trace/", site.admin_view(trace), name="codes_trace"), *original()]

    site.get_urls = get_urls  # type: ignore[method-assign]


_register_trace()
