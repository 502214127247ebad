"""Store rewards (门店奖励) in the brand console admin.

- The brand's store reward rules (one row; every change audited).
- The earnings ledger (门店收益流水): written by rewards.services.store_rewards only, read here, with a
  per-store balance summary (门店余额汇总: the store's account and its clerks' accounts).
- Withdrawals (门店提现): read-only, decided by actions that call the services (approve; reject with
  a reason, the amount goes back to the account; mark paid with the payment's reference), for the
  roles that may change withdrawals; every decision is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from commerce.models import Store
from rewards.admin import ReadOnlyAdmin, _confirm, _labelled, _local
from rewards.models import StoreEarning, StoreRewardPolicy, StoreWithdrawal
from rewards.services import store_rewards
from tenants.brand import audit
from tenants.brand.admin import SingletonAdmin, format_yuan, site
from tenants.brand.models import AuditAction
from tenants.errors import JiumaError

NOTE_TEMPLATE = "admin/rewards/withdrawal_note.html"
BALANCES_TEMPLATE = "admin/rewards/store_balances.html"


@admin.register(StoreRewardPolicy, site=site)
class StoreRewardPolicyAdmin(SingletonAdmin):
    """The brand's store rewards (one row; every change audited). Amounts in fen; 0 turns a reward off."""

    list_display = (
        "__str__",
        "enabled",
        "store_opening",
        "clerk_opening",
        "clerk_scan",
        "clerk_scans_per_day",
        "qr_minutes",
        "min_withdrawal",
        "updated_at",
    )

    @admin.display(description=_("门店开瓶奖励"))
    def store_opening(self, obj: StoreRewardPolicy) -> str:
        return format_yuan(obj.store_opening_fen)

    @admin.display(description=_("店员开瓶奖励"))
    def clerk_opening(self, obj: StoreRewardPolicy) -> str:
        return format_yuan(obj.clerk_opening_fen)

    @admin.display(description=_("服务员扫码奖励"))
    def clerk_scan(self, obj: StoreRewardPolicy) -> str:
        return format_yuan(obj.clerk_scan_fen)

    @admin.display(description=_("最低提现金额"))
    def min_withdrawal(self, obj: StoreRewardPolicy) -> str:
        return format_yuan(obj.min_withdrawal_fen)


class StoreListFilter(admin.RelatedFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = gettext("门店")


def _account_name(store: Store, clerk: Any) -> str:
    if clerk is None:
        return gettext("%(store)s（门店账户）") % {"store": store}
    return gettext("%(store)s · %(clerk)s") % {"store": store.name, "clerk": clerk}


@admin.register(StoreEarning, site=site)
class StoreEarningAdmin(ReadOnlyAdmin):
    """The earnings ledger: + opening rewards, clerk scans, rejected withdrawals back; - withdrawals."""

    list_display = ("created", "account", "kind", "amount", "source_text", "serial_no")
    list_filter = ("kind", ("store", StoreListFilter))
    search_fields = ("=source", "=serial", "store__code", "store__name", "clerk__phone")
    list_select_related = ("store", "clerk__user")
    fields = ("created", "account", "kind", "amount", "source_text", "serial_no", "claim_no", "note_text")
    created = _labelled("created_at", _("时间"))
    source_text = _labelled("source", _("来源"))
    serial_no = _labelled("serial", _("瓶序号"))
    claim_no = _labelled("claim_id", _("抽奖记录"))
    note_text = _labelled("note", _("备注"))

    @admin.display(description=_("账户"))
    def account(self, obj: StoreEarning) -> str:
        return _account_name(obj.store, obj.clerk)

    @admin.display(description=_("金额"), ordering="amount_fen")
    def amount(self, obj: StoreEarning) -> str:
        return ("+" if obj.amount_fen > 0 else "") + format_yuan(obj.amount_fen)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.balances_view)
        return [path("balances/", view, name="rewards_storeearning_balances"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        link = format_html(
            '<a href="{}" data-balances-link>{}</a>',
            reverse("admin:rewards_storeearning_balances"),
            gettext("门店余额汇总"),
        )
        return super().changelist_view(request, {"subtitle": link, **(extra_context or {})})

    def balances_view(self, request: HttpRequest) -> HttpResponse:
        """Per store: the store account's balance, its clerks' total, earned in all, open withdrawals."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.get("q", "").strip()[:100]
        stores = Store.objects.select_related("dealer").order_by("code")
        if query:
            stores = stores.filter(Q(code__icontains=query) | Q(name__icontains=query))
        page = Paginator(stores, 50).get_page(request.GET.get("p", "1")[:6] or "1")
        ids = [store.pk for store in page.object_list]
        sums = (
            StoreEarning.objects.filter(store_id__in=ids)
            .values("store_id")
            .annotate(
                store_balance=Sum("amount_fen", filter=Q(clerk__isnull=True)),
                clerks_balance=Sum("amount_fen", filter=Q(clerk__isnull=False)),
                earned=Sum("amount_fen", filter=Q(amount_fen__gt=0, kind__in=["opening", "clerk_scan"])),
            )
        )
        by_store: dict[int, dict[str, Any]] = {row["store_id"]: dict(row) for row in sums}
        pending = dict(
            StoreWithdrawal.objects.filter(store_id__in=ids, status__in=store_rewards.OPEN_WITHDRAWAL)
            .values("store_id")
            .annotate(n=Count("id"))
            .values_list("store_id", "n")
        )
        rows = [
            {
                "store": store,
                "store_balance": format_yuan(int(by_store.get(store.pk, {}).get("store_balance") or 0)),
                "clerks_balance": format_yuan(int(by_store.get(store.pk, {}).get("clerks_balance") or 0)),
                "earned": format_yuan(int(by_store.get(store.pk, {}).get("earned") or 0)),
                "pending": pending.get(store.pk, 0),
                "ledger_url": reverse("admin:rewards_storeearning_changelist") + f"?store__id__exact={store.pk}",
            }
            for store in page.object_list
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("门店余额汇总"),
            "opts": self.model._meta,
            "rows": rows,
            "page": page,
            "query": query,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, BALANCES_TEMPLATE, context)


class NoteForm(forms.Form):
    note = forms.CharField(max_length=200, strip=True)


@admin.register(StoreWithdrawal, site=site)
class StoreWithdrawalAdmin(ReadOnlyAdmin):
    """Withdrawals: requested in the terminal, decided here (the services check each state)."""

    list_display = ("id", "created", "account", "amount", "status", "balance", "requested_by", "decided_by")
    list_filter = ("status", ("store", StoreListFilter))
    search_fields = ("=id", "store__code", "store__name", "=reference", "requested_by")
    list_select_related = ("store", "clerk__user")
    actions = ["approve", "reject", "mark_paid"]
    fields = (
        "account",
        "amount",
        "status",
        "balance",
        "requested_by",
        "created",
        "decided_by",
        "decided",
        "reason",
        "reference",
        "paid",
    )
    created = _labelled("created_at", _("申请时间"))
    decided = _labelled("decided_at", _("审核时间"))
    paid = _labelled("paid_at", _("打款时间"))

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("rewards.change_storewithdrawal"))

    @admin.display(description=_("账户"))
    def account(self, obj: StoreWithdrawal) -> str:
        return _account_name(obj.store, obj.clerk)

    @admin.display(description=_("金额"), ordering="amount_fen")
    def amount(self, obj: StoreWithdrawal) -> str:
        return format_yuan(obj.amount_fen)

    @admin.display(description=_("账户当前余额"))
    def balance(self, obj: StoreWithdrawal) -> SafeString:
        return format_html("{}", format_yuan(store_rewards.balance(obj.store_id, obj.clerk_id)))

    def _lines(self, queryset: QuerySet[StoreWithdrawal]) -> list[str]:
        return [
            f"#{w.pk} {_account_name(w.store, w.clerk)}：{format_yuan(w.amount_fen)}，{w.get_status_display()}，"
            f"{_local(w.created_at)}"
            for w in queryset.select_related("store", "clerk__user")
        ]

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[StoreWithdrawal],
        service: Callable[..., StoreWithdrawal],
        detail: str,
        done: str,
        **extra: str,
    ) -> None:
        """Call the service on each selected withdrawal as the signed-in user; each audited."""
        actor = request.user.get_username()
        count = 0
        for withdrawal in queryset.order_by("id"):
            try:
                with transaction.atomic():
                    decided = service(withdrawal, actor=actor, **extra)
                    audit.record(
                        AuditAction.ACTION,
                        obj=decided,
                        before={"status": withdrawal.status},
                        after={"status": decided.status, "decided_by": actor, **extra},
                        detail=detail,
                    )
            except JiumaError as exc:
                self.message_user(request, f"#{withdrawal.pk}：{exc.message}", messages.ERROR)
                continue
            count += 1
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    def _ask_note(
        self,
        request: HttpRequest,
        queryset: QuerySet[StoreWithdrawal],
        *,
        action: str,
        title: str,
        label: str,
        confirm_label: str,
        form: NoteForm | None = None,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": action,
            "lines": self._lines(queryset),
            "label": label,
            "form": form or NoteForm(),
            "confirm_label": confirm_label,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, NOTE_TEMPLATE, context)

    def _note(self, request: HttpRequest) -> tuple[NoteForm | None, str]:
        """The note posted with the confirmation (None: not posted yet), and the note if valid."""
        if request.POST.get("post") != "yes":
            return None, ""
        form = NoteForm(request.POST)
        return form, form.cleaned_data["note"] if form.is_valid() else ""

    @admin.action(description=_("批准提现"), permissions=["decide"])
    def approve(self, request: HttpRequest, queryset: QuerySet[StoreWithdrawal]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="approve",
            title=gettext("批准提现"),
            question=gettext("确定批准以下提现吗？批准后请尽快打款并标记为已打款。"),
            lines=self._lines(queryset),
            confirm_label=gettext("确认批准"),
        )
        if page is not None:
            return page
        self._decide(
            request, queryset, store_rewards.approve, gettext("批准门店提现"), gettext("已批准 %(n)d 笔提现。")
        )
        return None

    @admin.action(description=_("驳回提现（金额退回账户）"), permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[StoreWithdrawal]) -> TemplateResponse | None:
        form, reason = self._note(request)
        if not reason:
            return self._ask_note(
                request,
                queryset,
                action="reject",
                title=gettext("驳回提现"),
                label=gettext("驳回原因（门店可见）"),
                confirm_label=gettext("确认驳回"),
                form=form,
            )
        self._decide(
            request,
            queryset,
            store_rewards.reject,
            gettext("驳回门店提现"),
            gettext("已驳回 %(n)d 笔提现，金额已退回账户。"),
            reason=reason,
        )
        return None

    @admin.action(description=_("标记为已打款"), permissions=["decide"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[StoreWithdrawal]) -> TemplateResponse | None:
        form, reference = self._note(request)
        if not reference:
            return self._ask_note(
                request,
                queryset,
                action="mark_paid",
                title=gettext("标记为已打款"),
                label=gettext("打款凭证号（银行流水号或转账单号）"),
                confirm_label=gettext("确认已打款"),
                form=form,
            )
        self._decide(
            request,
            queryset,
            store_rewards.mark_paid,
            gettext("门店提现已打款"),
            gettext("已标记 %(n)d 笔提现为已打款。"),
            reference=reference,
        )
        return None
