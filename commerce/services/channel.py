"""Sales channel use-cases: dealers and their authorised areas, stores, the people working there.

Plain functions with explicit inputs; each runs in one transaction in the current brand's schema,
records what it changed in the audit log (before/after) and refuses bad input with a JiumaError
(machine code + Chinese message) before writing anything.

What holds after every write (besides the database's own constraints, commerce.models):
- a second-level dealer's parent is an existing first-level dealer;
- a second-level dealer's own areas lie inside its parent's areas (when the parent has any);
- a store's region lies inside its dealer's effective areas (selectors.effective_area_codes), when
  the dealer has any, precisely enough to tell: a store in a city is refused when the dealer only
  holds some of that city's counties;
- new stores and channel staff are added to active dealers and stores only; active stores stay
  within the plan's store quota.
Changing a dealer's areas (or its parent) is refused while it would leave one of its stores, a
sub-dealer's areas or a sub-dealer's stores outside.

Locks: a write takes the row of the dealer it touches and then that dealer's parent, always in
that order, so concurrent changes to areas, parents and stores see each other's results.

The `check_*` and `clean_*` functions are the same rules for the admin's forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model, ProtectedError, RestrictedError
from django.utils.translation import gettext as _

from commerce import regions, selectors
from commerce.errors import ChannelErrorCode as E
from commerce.models import (
    ChannelStaff,
    ChannelStatus,
    Dealer,
    DealerArea,
    DealerLevel,
    Store,
    new_store_token,
)
from tenants.brand import audit
from tenants.brand.models import AuditAction, User
from tenants.brand.roles import DEALER_ROLES, ChannelRole
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound
from tenants.validation import PHONE_RE, USERNAME_RE

MAX_AREAS = 500
_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
_LISTED = 20  # at most this many codes named in an error
_MICRO = Decimal("0.000001")


# --- field rules (also used by the admin's forms) -----------------------------------------------------


def clean_code(raw: str, *, error: E = E.INVALID_DEALER) -> str:
    """A dealer or store code: 1–32 letters, digits, - or _, starting with a letter or digit. Stored
    in upper case, so "jx-01" and "JX-01" are the same code."""
    code = (raw or "").strip().upper()
    if not _CODE_RE.match(code):
        raise JiumaError(error, _("编码须为 1–32 位字母、数字、- 或 _，以字母或数字开头。"), fields={"code": raw})
    return code


def clean_name(raw: str, *, field: str = "name", error: E = E.INVALID_DEALER) -> str:
    name = (raw or "").strip()
    if not name or len(name) > 100:
        raise JiumaError(error, _("名称不能为空，且不超过 100 个字。"), fields={field: raw})
    return name


def clean_phone(raw: str, *, field: str = "contact_phone", required: bool = False) -> str:
    phone = (raw or "").strip()
    if (required and not phone) or (phone and not PHONE_RE.match(phone)):
        raise JiumaError(E.INVALID_PHONE, _("手机号格式不正确。"), fields={field: raw})
    return phone


def clean_region(raw: str, *, field: str = "region_code") -> regions.Region:
    """The region of a GB/T 2260 code; refused with the registry's Chinese message when unknown."""
    try:
        return regions.validate((raw or "").strip() if isinstance(raw, str) else raw)
    except regions.UnknownRegionError as exc:
        raise JiumaError(E.UNKNOWN_REGION, str(exc), fields={field: raw}) from exc


def clean_area_codes(raw: Iterable[str]) -> list[str]:
    """Validated area codes, sorted. Refused: unknown codes, a code twice, an area inside another."""
    codes = [clean_region(code, field="areas").code for code in raw]
    if len(codes) > MAX_AREAS:
        raise JiumaError(E.TOO_MANY_AREAS, _("授权区域不能超过 %(n)d 个。") % {"n": MAX_AREAS})
    for i, code in enumerate(codes):
        for other in codes[i + 1 :]:
            if regions.is_within(code, other) or regions.is_within(other, code):
                inner, outer = (code, other) if regions.is_within(code, other) else (other, code)
                message = (
                    _("授权区域重复：%(name)s。") % {"name": _region_name(code)}
                    if code == other
                    else _("授权区域重叠：%(inner)s 已包含在 %(outer)s 内。")
                    % {"inner": _region_name(inner), "outer": _region_name(outer)}
                )
                raise JiumaError(E.OVERLAPPING_AREAS, message, fields={"areas": [inner, outer]})
    return sorted(codes)


def check_hierarchy(dealer: Dealer | None, level: int, parent: Dealer | None, *, parent_changed: bool = True) -> None:
    """A first-level dealer has no parent; a second-level one has an active first-level parent
    (other than itself); a dealer with sub-dealers stays first-level. `dealer`: None for a new one."""
    if level not in DealerLevel.values:
        raise JiumaError(E.INVALID_DEALER, _("经销商级别只能是一级或二级。"), fields={"level": level})
    if level == DealerLevel.FIRST:
        if parent is not None:
            raise JiumaError(E.PARENT_NOT_ALLOWED, _("一级经销商不能有上级经销商。"), fields={"parent": parent.pk})
        return
    if parent is None:
        raise JiumaError(E.PARENT_REQUIRED, _("二级经销商须指定上级经销商。"), fields={"parent": None})
    if dealer is not None and dealer.pk is not None:
        if parent.pk == dealer.pk:
            raise JiumaError(E.PARENT_IS_SECOND_LEVEL, _("经销商不能是自己的上级。"), fields={"parent": parent.pk})
        if Dealer.objects.filter(parent_id=dealer.pk).exists():
            raise Conflict(E.HAS_SUB_DEALERS, _("该经销商下有二级经销商，不能改为二级经销商。"))
    if parent.level != DealerLevel.FIRST:
        raise JiumaError(
            E.PARENT_IS_SECOND_LEVEL,
            _("上级经销商“%(name)s”本身是二级经销商，只能选择一级经销商。") % {"name": parent.name},
            fields={"parent": parent.pk},
        )
    if parent_changed and not parent.is_active:
        raise Conflict(
            E.PARENT_SUSPENDED, _("上级经销商“%(name)s”已停用。") % {"name": parent.name}, fields={"parent": parent.pk}
        )


def check_areas(dealer: Dealer, codes: Sequence[str]) -> None:
    """The rules on a dealer's (new) own areas, given its (new) level and parent: inside the parent's
    areas, and still containing its stores and its sub-dealers' areas and stores. `codes` are clean."""
    parent_areas: list[str] = []
    if dealer.level == DealerLevel.SECOND and dealer.parent_id is not None:
        parent_areas = selectors.area_codes(dealer.parent_id)
        outside = [code for code in codes if not regions.is_within_any(code, parent_areas)]
        if parent_areas and outside:
            raise JiumaError(
                E.AREA_OUTSIDE_PARENT,
                _("授权区域须在上级经销商的授权区域内：%(names)s 不在其中。")
                % {"names": "、".join(_region_name(code) for code in outside[:_LISTED])},
                fields={"areas": outside[:_LISTED]},
            )
    if dealer._state.adding:
        return  # a new dealer: nothing depends on it yet
    effective = list(codes) or parent_areas
    if not effective:
        return  # not restricted: everything fits
    stores = [
        code
        for code, region in Store.objects.filter(dealer_id=dealer.pk).values_list("code", "region_code")
        if regions.coverage(region, effective) is not True
    ]
    sub_dealers: list[str] = []
    inheriting: list[int] = []
    if dealer.level == DealerLevel.FIRST:
        for child in Dealer.objects.filter(parent_id=dealer.pk).prefetch_related("areas").order_by("code"):
            own = [area.region_code for area in child.areas.all()]
            if not own:
                inheriting.append(child.pk)
            elif not all(regions.is_within_any(code, effective) for code in own):
                sub_dealers.append(child.code)
        stores += [
            code
            for code, region in Store.objects.filter(dealer_id__in=inheriting).values_list("code", "region_code")
            if regions.coverage(region, effective) is not True
        ]
    if stores or sub_dealers:
        named = [_("门店 %(c)s") % {"c": c} for c in stores] + [_("二级经销商 %(c)s") % {"c": c} for c in sub_dealers]
        raise Conflict(
            E.AREAS_EXCLUDE_DEPENDENTS,
            _("修改后的授权区域不再包含：%(names)s。请先调整这些门店或二级经销商。")
            % {"names": "、".join(named[:_LISTED]) + ("等" if len(named) > _LISTED else "")},
            fields={"stores": stores[:_LISTED], "sub_dealers": sub_dealers[:_LISTED]},
        )


def check_store_place(dealer: Dealer, region_code: str, *, field: str = "region_code") -> regions.Region:
    """A store's region: a county, or a city (a province only where it has nothing below it),
    inside its dealer's effective areas when it has any."""
    region = clean_region(region_code, field=field)
    if region.level == "province" and regions.children(region.code):
        raise JiumaError(E.STORE_REGION_TOO_COARSE, _("门店所在区域须精确到市或区县。"), fields={field: region_code})
    areas = selectors.effective_area_codes(dealer)
    covered = selectors.covers(areas, region.code)
    if areas and covered is None:
        raise JiumaError(
            E.STORE_REGION_TOO_COARSE,
            _("经销商“%(dealer)s”的授权区域比“%(region)s”更细，请把门店区域精确到区县。")
            % {"dealer": dealer.name, "region": region.full_name},
            fields={field: region_code},
        )
    if covered is False:
        raise JiumaError(
            E.STORE_OUTSIDE_DEALER_AREA,
            _("“%(region)s”不在经销商“%(dealer)s”的授权区域内。") % {"region": region.full_name, "dealer": dealer.name},
            fields={field: region_code},
        )
    return region


def check_store_dealer(dealer: Dealer) -> None:
    if not dealer.is_active:
        raise Conflict(
            E.DEALER_SUSPENDED,
            _("经销商“%(name)s”已停用，不能新增门店。") % {"name": dealer.name},
            fields={"dealer": dealer.pk},
        )


def check_store_quota(adding: int = 1) -> None:
    """Active stores stay within the plan's quota (Plan.max_stores)."""
    plan = getattr(getattr(connection, "tenant", None), "plan", None)
    if plan is None:
        return
    if Store.objects.filter(status=ChannelStatus.ACTIVE).count() + adding > plan.max_stores:
        raise Conflict(E.STORE_QUOTA, _("门店数量已达套餐上限（%(n)d 家）。") % {"n": plan.max_stores})


def clean_coordinates(latitude: Decimal | None, longitude: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """Both or neither, on the globe, rounded to 6 decimal places (about 0.1 m)."""
    if latitude is None or longitude is None:
        if latitude is not None or longitude is not None:
            raise JiumaError(E.INVALID_STORE, _("经纬度须同时填写或同时留空。"), fields={"latitude": str(latitude)})
        return None, None
    lat, lon = Decimal(latitude), Decimal(longitude)
    if not (lat.is_finite() and lon.is_finite() and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise JiumaError(E.INVALID_STORE, _("经纬度超出范围。"), fields={"latitude": str(latitude)})
    return lat.quantize(_MICRO, rounding=ROUND_HALF_UP), lon.quantize(_MICRO, rounding=ROUND_HALF_UP)


# --- helpers ----------------------------------------------------------------------------------------


def _region_name(code: str) -> str:
    region = regions.get(code)
    return f"{region.full_name}（{code}）" if region is not None else code


def _lock_dealer(dealer_id: int) -> Dealer:
    """The dealer, locked, then its parent locked (always in this order)."""
    dealer = Dealer.objects.select_for_update().filter(pk=dealer_id).first()
    if dealer is None:
        raise NotFound(E.DEALER_NOT_FOUND, _("经销商不存在。"))
    if dealer.parent_id is not None:
        dealer.parent = Dealer.objects.select_for_update().get(pk=dealer.parent_id)
    return dealer


def _referenced_dealer(dealer_id: int, *, field: str = "dealer", error: E = E.UNKNOWN_DEALER) -> Dealer:
    """A dealer named in the input (not in the URL), locked like _lock_dealer: unknown is a 400."""
    try:
        return _lock_dealer(dealer_id)
    except NotFound:
        message = _("上级经销商不存在。") if error == E.UNKNOWN_PARENT else _("经销商不存在。")
        raise JiumaError(error, message, fields={field: dealer_id}) from None


def _lock_store(store_id: int) -> Store:
    store = Store.objects.select_for_update().filter(pk=store_id).first()
    if store is None:
        raise NotFound(E.STORE_NOT_FOUND, _("门店不存在。"))
    return store


def _save_new(obj: Model, conflict: Conflict) -> None:
    """Insert, turning a unique violation (a concurrent insert of the same code) into `conflict`."""
    try:
        with transaction.atomic():
            obj.save(force_insert=True)
    except IntegrityError as exc:
        raise conflict from exc


def _delete(obj: Model, in_use: Conflict) -> None:
    try:
        with transaction.atomic():
            obj.delete()
    except (ProtectedError, RestrictedError, IntegrityError) as exc:
        raise in_use from exc


def _dealer_snapshot(dealer: Dealer, areas: Sequence[str] | None = None) -> dict[str, Any]:
    data = audit.snapshot(dealer)
    if areas is not None:
        data["areas"] = list(areas)
    return data


# --- dealers ----------------------------------------------------------------------------------------


@transaction.atomic
def create_dealer(
    *,
    code: str,
    name: str,
    contact_name: str = "",
    contact_phone: str = "",
    level: int = DealerLevel.FIRST,
    parent_id: int | None = None,
    areas: Iterable[str] = (),
) -> Dealer:
    code = clean_code(code)
    name = clean_name(name)
    contact_phone = clean_phone(contact_phone)
    parent = None if parent_id is None else _referenced_dealer(parent_id, field="parent", error=E.UNKNOWN_PARENT)
    check_hierarchy(None, level, parent)
    codes = clean_area_codes(areas)
    taken = Conflict(E.DEALER_CODE_TAKEN, _("经销商编码 %(code)s 已存在。") % {"code": code}, fields={"code": code})
    if Dealer.objects.filter(code=code).exists():
        raise taken
    dealer = Dealer(
        code=code,
        name=name,
        contact_name=(contact_name or "").strip()[:50],
        contact_phone=contact_phone,
        level=level,
        parent=parent,
    )
    check_areas(dealer, codes)
    _save_new(dealer, taken)
    DealerArea.objects.bulk_create([DealerArea(dealer=dealer, region_code=c) for c in codes])
    audit.record(AuditAction.CREATE, obj=dealer, after=_dealer_snapshot(dealer, codes))
    return dealer


_DEALER_FIELDS = frozenset({"name", "contact_name", "contact_phone", "level", "parent_id"})


@transaction.atomic
def update_dealer(dealer_id: int, **changes: Any) -> Dealer:
    """Change a dealer's name, contact, level or parent (its code never changes; its areas:
    set_dealer_areas; its status: suspend_dealer / resume_dealer)."""
    unknown = set(changes) - _DEALER_FIELDS
    if unknown:
        raise TypeError(f"update_dealer: unknown fields {sorted(unknown)}")
    dealer = _lock_dealer(dealer_id)
    before = audit.snapshot(dealer)
    if "name" in changes:
        dealer.name = clean_name(changes["name"])
    if "contact_name" in changes:
        dealer.contact_name = (changes["contact_name"] or "").strip()[:50]
    if "contact_phone" in changes:
        dealer.contact_phone = clean_phone(changes["contact_phone"])
    level = changes.get("level", dealer.level)
    # Becoming first-level drops the parent unless one is given (and then refused).
    parent_id = changes.get("parent_id", None if level == DealerLevel.FIRST else dealer.parent_id)
    parent = dealer.parent
    if parent_id != dealer.parent_id:
        parent = None if parent_id is None else _referenced_dealer(parent_id, field="parent", error=E.UNKNOWN_PARENT)
    hierarchy_changed = level != dealer.level or parent != dealer.parent
    check_hierarchy(dealer, level, parent, parent_changed=parent != dealer.parent)
    dealer.level, dealer.parent = level, parent
    if hierarchy_changed:
        check_areas(dealer, selectors.area_codes(dealer.pk))
    dealer.save()
    b, a = audit.changed_only(before, audit.snapshot(dealer))
    if a:
        audit.record(AuditAction.UPDATE, obj=dealer, before=b, after=a)
    return dealer


def _set_dealer_status(dealer_id: int, status: ChannelStatus, detail: str) -> Dealer:
    dealer = _lock_dealer(dealer_id)
    if dealer.status != status:
        before = dealer.status
        dealer.status = status
        dealer.save(update_fields=["status"])
        audit.record(
            AuditAction.UPDATE, obj=dealer, before={"status": before}, after={"status": status.value}, detail=detail
        )
    return dealer


@transaction.atomic
def suspend_dealer(dealer_id: int) -> Dealer:
    """Stop a dealer: no new stores, staff or sub-dealers under it. Its stores, staff and history
    stay; the terminal pages refuse its people while it is suspended. Idempotent."""
    return _set_dealer_status(dealer_id, ChannelStatus.SUSPENDED, "停用经销商")


@transaction.atomic
def resume_dealer(dealer_id: int) -> Dealer:
    return _set_dealer_status(dealer_id, ChannelStatus.ACTIVE, "启用经销商")


@transaction.atomic
def set_dealer_areas(dealer_id: int, codes: Iterable[str]) -> list[str]:
    """Replace the dealer's authorised areas by `codes` (any level). Returns the new set, sorted.
    An empty set leaves the dealer unrestricted (a second-level dealer then inherits its parent's)."""
    dealer = _lock_dealer(dealer_id)
    new = clean_area_codes(codes)
    old = selectors.area_codes(dealer.pk)
    if new == old:
        return new
    check_areas(dealer, new)
    DealerArea.objects.filter(dealer=dealer).exclude(region_code__in=new).delete()
    DealerArea.objects.bulk_create([DealerArea(dealer=dealer, region_code=c) for c in new if c not in old])
    audit.record(AuditAction.UPDATE, obj=dealer, before={"areas": old}, after={"areas": new}, detail="设置授权区域")
    return new


@transaction.atomic
def delete_dealer(dealer_id: int) -> None:
    """Delete a dealer that never had stores, sub-dealers, staff or goods; otherwise suspend it."""
    dealer = _lock_dealer(dealer_id)
    before = _dealer_snapshot(dealer, selectors.area_codes(dealer.pk))
    pk, text = dealer.pk, str(dealer)
    _delete(
        dealer,
        Conflict(E.DEALER_IN_USE, _("该经销商已有门店、二级经销商、渠道人员或业务记录，不能删除，请改为停用。")),
    )
    audit.record(AuditAction.DELETE, object_type="commerce.dealer", object_id=str(pk), object_repr=text, before=before)


# --- stores -----------------------------------------------------------------------------------------


@transaction.atomic
def create_store(
    *,
    code: str,
    name: str,
    dealer_id: int,
    region_code: str,
    address: str = "",
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
    contact_name: str = "",
    contact_phone: str = "",
) -> Store:
    code = clean_code(code, error=E.INVALID_STORE)
    name = clean_name(name, error=E.INVALID_STORE)
    contact_phone = clean_phone(contact_phone)
    latitude, longitude = clean_coordinates(latitude, longitude)
    dealer = _referenced_dealer(dealer_id)
    check_store_dealer(dealer)
    region = check_store_place(dealer, region_code)
    taken = Conflict(E.STORE_CODE_TAKEN, _("门店编码 %(code)s 已存在。") % {"code": code}, fields={"code": code})
    if Store.objects.filter(code=code).exists():
        raise taken
    check_store_quota()
    store = Store(
        code=code,
        name=name,
        dealer=dealer,
        region_code=region.code,
        address=(address or "").strip()[:200],
        latitude=latitude,
        longitude=longitude,
        contact_name=(contact_name or "").strip()[:50],
        contact_phone=contact_phone,
    )
    _save_new(store, taken)
    audit.record(AuditAction.CREATE, obj=store, after=audit.snapshot(store))
    return store


_STORE_FIELDS = frozenset(
    {"name", "dealer_id", "region_code", "address", "latitude", "longitude", "contact_name", "contact_phone"}
)


@transaction.atomic
def update_store(store_id: int, **changes: Any) -> Store:
    """Change a store's fields (not its code, status or QR token). Moving it to another dealer or
    region is checked against that dealer's areas; the new dealer must be active."""
    unknown = set(changes) - _STORE_FIELDS
    if unknown:
        raise TypeError(f"update_store: unknown fields {sorted(unknown)}")
    store = _lock_store(store_id)
    before = audit.snapshot(store)
    if "name" in changes:
        store.name = clean_name(changes["name"], error=E.INVALID_STORE)
    for text, size in (("address", 200), ("contact_name", 50)):
        if text in changes:
            setattr(store, text, (changes[text] or "").strip()[:size])
    if "contact_phone" in changes:
        store.contact_phone = clean_phone(changes["contact_phone"])
    if "latitude" in changes or "longitude" in changes:
        store.latitude, store.longitude = clean_coordinates(
            changes.get("latitude", store.latitude), changes.get("longitude", store.longitude)
        )
    dealer_id = changes.get("dealer_id", store.dealer_id)
    region_code = changes.get("region_code", store.region_code)
    if dealer_id != store.dealer_id or region_code != store.region_code:
        dealer = _referenced_dealer(dealer_id)
        if dealer_id != store.dealer_id:
            check_store_dealer(dealer)
        store.dealer = dealer
        store.region_code = check_store_place(dealer, region_code).code
    store.save()
    b, a = audit.changed_only(before, audit.snapshot(store))
    if a:
        audit.record(AuditAction.UPDATE, obj=store, before=b, after=a)
    return store


@transaction.atomic
def suspend_store(store_id: int) -> Store:
    """Close a store (its QR code stops counting, its staff are refused by the terminal pages).
    Frees a place in the plan's store quota. Idempotent."""
    store = _lock_store(store_id)
    if store.status != ChannelStatus.SUSPENDED:
        store.status = ChannelStatus.SUSPENDED
        store.save(update_fields=["status"])
        audit.record(
            AuditAction.UPDATE, obj=store, before={"status": "active"}, after={"status": "suspended"}, detail="停用门店"
        )
    return store


@transaction.atomic
def resume_store(store_id: int) -> Store:
    store = _lock_store(store_id)
    if store.status == ChannelStatus.ACTIVE:
        return store
    dealer = _lock_dealer(store.dealer_id)
    if not dealer.is_active:
        raise Conflict(E.DEALER_SUSPENDED, _("经销商“%(name)s”已停用，不能启用其门店。") % {"name": dealer.name})
    check_store_quota()
    store.status = ChannelStatus.ACTIVE
    store.save(update_fields=["status"])
    audit.record(
        AuditAction.UPDATE, obj=store, before={"status": "suspended"}, after={"status": "active"}, detail="启用门店"
    )
    return store


@transaction.atomic
def rotate_store_qr_token(store_id: int) -> Store:
    """Give the store a new QR token (when its printed QR code leaked): the old one stops working."""
    store = _lock_store(store_id)
    store.qr_token = new_store_token()
    store.save(update_fields=["qr_token"])
    audit.record(AuditAction.ACTION, obj=store, detail="更换门店码")
    return store


@transaction.atomic
def delete_store(store_id: int) -> None:
    """Delete a store that never had staff or goods; otherwise suspend it."""
    store = _lock_store(store_id)
    before = audit.snapshot(store)
    pk, text = store.pk, str(store)
    _delete(store, Conflict(E.STORE_IN_USE, _("该门店已有渠道人员或业务记录，不能删除，请改为停用。")))
    audit.record(AuditAction.DELETE, object_type="commerce.store", object_id=str(pk), object_repr=text, before=before)


# --- channel staff ----------------------------------------------------------------------------------


def check_channel_role(role: str) -> ChannelRole:
    try:
        return ChannelRole(role)
    except ValueError as exc:
        raise JiumaError(E.INVALID_CHANNEL_ROLE, _("渠道人员角色不存在。"), fields={"role": role}) from exc


def _employer(role: ChannelRole, dealer_id: int | None, store_id: int | None) -> Dealer | Store:
    """The active dealer or store the role works for, locked."""
    if role in DEALER_ROLES:
        if dealer_id is None or store_id is not None:
            raise JiumaError(
                E.EMPLOYER_MISMATCH, _("经销商人员须指定所属经销商，且不能指定门店。"), fields={"dealer": dealer_id}
            )
        dealer = _referenced_dealer(dealer_id)
        if not dealer.is_active:
            raise Conflict(E.DEALER_SUSPENDED, _("经销商“%(name)s”已停用。") % {"name": dealer.name})
        return dealer
    if store_id is None or dealer_id is not None:
        raise JiumaError(
            E.EMPLOYER_MISMATCH, _("门店人员须指定所属门店，且不能指定经销商。"), fields={"store": store_id}
        )
    store = Store.objects.select_for_update().filter(pk=store_id).first()
    if store is None:
        raise JiumaError(E.UNKNOWN_STORE, _("门店不存在。"), fields={"store": store_id})
    if not store.is_active:
        raise Conflict(E.STORE_SUSPENDED, _("门店“%(name)s”已停用。") % {"name": store.name})
    return store


@dataclass(frozen=True)
class NewChannelStaff:
    """A checked request to add a channel staff member (check_new_channel_staff)."""

    role: ChannelRole
    phone: str
    username: str
    employer: Dealer | Store


def check_new_channel_staff(
    *,
    role: str,
    phone: str,
    dealer_id: int | None = None,
    store_id: int | None = None,
    username: str = "",
    password: str | None = None,
) -> NewChannelStaff:
    """Every rule on a new channel staff member, writing nothing (the admin's add form uses it too).
    Must run in a transaction: the employer's row is locked."""
    the_role = check_channel_role(role)
    phone = clean_phone(phone, field="phone", required=True)
    given = (username or "").strip()
    if given and not USERNAME_RE.match(given):
        raise JiumaError(
            E.INVALID_USERNAME, _("用户名须为 3–150 位字母、数字或 _ . @ + - 符号。"), fields={"username": given}
        )
    employer = _employer(the_role, dealer_id, store_id)
    if ChannelStaff.objects.filter(phone=phone, is_active=True).exists():
        raise _phone_taken(phone)
    if given and User.objects.filter(username=given).exists():
        raise Conflict(E.USERNAME_TAKEN, _("用户名已存在。"), fields={"username": given})
    username = given or _free_username(phone)
    if password:
        try:
            validate_password(password, User(username=username, phone=phone))
        except ValidationError as exc:
            raise JiumaError(
                E.INVALID_PASSWORD, _("密码不符合要求：") + "；".join(exc.messages), fields={"password": "***"}
            ) from exc
    return NewChannelStaff(role=the_role, phone=phone, username=username, employer=employer)


def _free_username(phone: str) -> str:
    """The phone number, or (when someone has it, e.g. the same person's earlier, deactivated account)
    the phone number with the first free suffix: 13900000000-2, -3, ..."""
    taken = set(User.objects.filter(username__startswith=phone).values_list("username", flat=True))
    candidate, n = phone, 1
    while candidate in taken:
        n += 1
        candidate = f"{phone}-{n}"
    if not USERNAME_RE.match(candidate):  # a phone number shorter than a username may be
        raise JiumaError(E.INVALID_USERNAME, _("请填写用户名（至少 3 位）。"), fields={"username": candidate})
    return candidate


def _phone_taken(phone: str) -> Conflict:
    return Conflict(E.PHONE_TAKEN, _("该手机号已被其他在职渠道人员使用。"), fields={"phone": phone})


@transaction.atomic
def add_channel_staff(
    *,
    role: str,
    phone: str,
    dealer_id: int | None = None,
    store_id: int | None = None,
    display_name: str = "",
    username: str = "",
    password: str | None = None,
) -> ChannelStaff:
    """A person of a dealer or store: a brand User with is_staff False (never in the admin or the
    brand API) and the role's group. The username defaults to the phone number. Without a password
    the account cannot sign in with one until it is set (e.g. when the person binds WeChat)."""
    new = check_new_channel_staff(
        role=role, phone=phone, dealer_id=dealer_id, store_id=store_id, username=username, password=password
    )
    user = User(username=new.username, display_name=(display_name or "").strip()[:64], phone=new.phone, is_staff=False)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    _save_new(user, Conflict(E.USERNAME_TAKEN, _("用户名已存在。"), fields={"username": new.username}))
    user.groups.set([Group.objects.get(name=new.role.value)])
    staff = ChannelStaff(
        user=user,
        role=new.role.value,
        dealer=new.employer if isinstance(new.employer, Dealer) else None,
        store=new.employer if isinstance(new.employer, Store) else None,
        phone=new.phone,
    )
    _save_new(staff, _phone_taken(new.phone))
    audit.record(
        AuditAction.CREATE,
        obj=staff,
        after={**audit.snapshot(staff), "username": new.username, "has_password": bool(password)},
    )
    return staff


@transaction.atomic
def deactivate_channel_staff(staff_id: int) -> ChannelStaff:
    """The person leaves: the record and the account are deactivated (they can no longer sign in);
    their history stays. Idempotent."""
    staff = ChannelStaff.objects.select_for_update().select_related("user").filter(pk=staff_id).first()
    if staff is None:
        raise NotFound(E.STAFF_NOT_FOUND, _("渠道人员不存在。"))
    if staff.is_active or staff.user.is_active:
        staff.is_active = False
        staff.save(update_fields=["is_active"])
        User.objects.filter(pk=staff.user_id).update(is_active=False)
        staff.user.is_active = False
        audit.record(
            AuditAction.UPDATE, obj=staff, before={"is_active": True}, after={"is_active": False}, detail="停用渠道人员"
        )
    return staff
