"""The catalog's stock and prices (see the commerce.models contract: "Stock" and the lock order).

Stock changes are guarded UPDATEs, each with its StockMovement in the same transaction, taken in
ascending sku id (lock order step 6). The movement is written first with ON CONFLICT DO NOTHING: a
movement already booked for its (sku, kind, source) means that change was made before, so a retried
release or shipment changes nothing the second time. The caller owns the transaction (these are
steps of checkout, cancel, shipment, refund); the staff functions (`inbound`, `adjust`,
`set_on_hand`) are top-level and open their own.

Prices: a member level's price of a SKU is its SkuLevelPrice, else (price_fen × price_percent + 50)
// 100 (half up); never above the list price. Member prices apply to normal orders only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import StockErrorCode as E
from commerce.models import (
    SELLABLE_SKU,
    MemberLevel,
    PriceSource,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovementKind,
)
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

MAX_QUANTITY = 1_000_000


@dataclass(frozen=True)
class StockLine:
    """One SKU quantity to move, and the source that makes the move happen once."""

    sku_id: int
    quantity: int
    source: str


_MOVE = """
INSERT INTO commerce_stockmovement
    (sku_id, kind, on_hand_delta, reserved_delta, source, note, created_at, created_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sku_id, kind, source) DO NOTHING
RETURNING id
"""
_RESERVE = (
    "UPDATE commerce_stock SET reserved = reserved + %s, updated_at = %s WHERE sku_id = %s AND on_hand - reserved >= %s"
)
_RELEASE = "UPDATE commerce_stock SET reserved = reserved - %s, updated_at = %s WHERE sku_id = %s AND reserved >= %s"
_SHIP = (
    "UPDATE commerce_stock SET on_hand = on_hand - %s, reserved = reserved - %s, updated_at = %s"
    " WHERE sku_id = %s AND reserved >= %s"
)
_RAISE_ON_HAND = "UPDATE commerce_stock SET on_hand = on_hand + %s, updated_at = %s WHERE sku_id = %s"
_ADJUST = (
    "UPDATE commerce_stock SET on_hand = on_hand + %s, updated_at = %s WHERE sku_id = %s AND on_hand + %s >= reserved"
)
_ENSURE = (
    "INSERT INTO commerce_stock (sku_id, on_hand, reserved, updated_at) VALUES (%s, 0, 0, %s) ON CONFLICT DO NOTHING"
)


def _check_quantity(quantity: int) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= MAX_QUANTITY:
        raise JiumaError(E.INVALID_QUANTITY, _("数量无效。"), fields={"quantity": str(quantity)[:20]})


def _ordered(lines: Iterable[StockLine]) -> list[StockLine]:
    ordered = sorted(lines, key=lambda line: (line.sku_id, line.source))
    for line in ordered:
        _check_quantity(line.quantity)
    return ordered


def _book(
    cursor: object,
    line: StockLine,
    kind: str,
    on_hand_delta: int,
    reserved_delta: int,
    now: datetime,
    note: str = "",
    actor: str = "",
) -> bool:
    """Append the movement; False when this (sku, kind, source) was booked before."""
    cursor.execute(  # type: ignore[attr-defined]
        _MOVE, [line.sku_id, kind, on_hand_delta, reserved_delta, line.source[:80], note[:200], now, actor[:150]]
    )
    return cursor.fetchone() is not None  # type: ignore[attr-defined]


def _sku_label(sku_id: int) -> str:
    sku = Sku.objects.select_related("product").filter(pk=sku_id).first()
    return sku.display_name if sku is not None else f"#{sku_id}"


def reserve(lines: Sequence[StockLine], *, now: datetime | None = None) -> None:
    """Hold the units for orders: reserved += q where available >= q, in ascending sku id. Raises
    Conflict insufficient_stock (the caller's transaction is undone) when a SKU has too few."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        for line in _ordered(lines):
            if not _book(cursor, line, StockMovementKind.RESERVE, 0, line.quantity, now):
                continue
            cursor.execute(_RESERVE, [line.quantity, now, line.sku_id, line.quantity])
            if cursor.rowcount != 1:
                raise Conflict(
                    E.INSUFFICIENT,
                    _("库存不足：%(name)s") % {"name": _sku_label(line.sku_id)},
                    fields={"sku_id": line.sku_id},
                )


def release(lines: Sequence[StockLine], *, now: datetime | None = None) -> None:
    """Give held units back (cancel: "line:<id>", refund before shipment: "refund:<no>")."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        for line in _ordered(lines):
            if not _book(cursor, line, StockMovementKind.RELEASE, 0, -line.quantity, now):
                continue
            cursor.execute(_RELEASE, [line.quantity, now, line.sku_id, line.quantity])
            if cursor.rowcount != 1:
                raise Conflict(E.NOT_HELD, _("释放的库存超过了占用数量。"), fields={"sku_id": line.sku_id})


def ship(lines: Sequence[StockLine], *, now: datetime | None = None, actor: str = "") -> None:
    """Held units leave the warehouse (shipment or pickup): on_hand -= q and reserved -= q."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        for line in _ordered(lines):
            if not _book(cursor, line, StockMovementKind.SHIP, -line.quantity, -line.quantity, now, actor=actor):
                continue
            cursor.execute(_SHIP, [line.quantity, line.quantity, now, line.sku_id, line.quantity])
            if cursor.rowcount != 1:
                raise Conflict(E.NOT_HELD, _("出库数量超过了占用数量。"), fields={"sku_id": line.sku_id})


def restock(line: StockLine, *, now: datetime | None = None, actor: str = "", note: str = "") -> bool:
    """Returned goods back in stock ("aftersale:<id>"): on_hand += q. False when booked before."""
    now = now or timezone.now()
    _check_quantity(line.quantity)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ENSURE, [line.sku_id, now])
        if not _book(cursor, line, StockMovementKind.RESTOCK, line.quantity, 0, now, note=note, actor=actor):
            return False
        cursor.execute(_RAISE_ON_HAND, [line.quantity, now, line.sku_id])
    return True


def _staff_source(prefix: str, ref: str) -> str:
    ref = ref.strip()
    if not ref or len(ref) > 70:
        raise JiumaError(E.INVALID_QUANTITY, _("请填写单据编号（不超过 70 个字符）。"), fields={"ref": ref[:80]})
    return f"{prefix}:{ref}"


def _known_sku(sku_id: int) -> None:
    if not Sku.objects.filter(pk=sku_id).exists():
        raise NotFound(E.SKU_NOT_FOUND, _("SKU 不存在。"))


def inbound(sku_id: int, quantity: int, *, ref: str, actor: str, note: str = "", now: datetime | None = None) -> Stock:
    """Staff receive goods into the warehouse (入库, source "inbound:<ref>", once per ref)."""
    now = now or timezone.now()
    _check_quantity(quantity)
    source = _staff_source("inbound", ref)
    _known_sku(sku_id)
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(_ENSURE, [sku_id, now])
        line = StockLine(sku_id, quantity, source)
        if _book(cursor, line, StockMovementKind.INBOUND, quantity, 0, now, note=note, actor=actor):
            cursor.execute(_RAISE_ON_HAND, [quantity, now, sku_id])
    return Stock.objects.get(pk=sku_id)


def adjust(sku_id: int, delta: int, *, ref: str, actor: str, note: str = "", now: datetime | None = None) -> Stock:
    """A stock-take correction (盘点调整, source "adjust:<ref>"): on_hand ± delta, never below what
    orders hold."""
    now = now or timezone.now()
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise JiumaError(E.INVALID_QUANTITY, _("调整数量无效。"), fields={"delta": str(delta)[:20]})
    source = _staff_source("adjust", ref)
    _known_sku(sku_id)
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(_ENSURE, [sku_id, now])
        if _book(cursor, StockLine(sku_id, abs(delta), source), StockMovementKind.ADJUST, delta, 0, now, note, actor):
            cursor.execute(_ADJUST, [delta, now, sku_id, delta])
            if cursor.rowcount != 1:
                raise Conflict(E.BELOW_RESERVED, _("调整后的在库数量不能少于订单已占用的数量。"))
    return Stock.objects.get(pk=sku_id)


def set_on_hand(
    sku_id: int, on_hand: int, *, ref: str, actor: str, note: str = "", now: datetime | None = None
) -> Stock:
    """Set the counted quantity (盘点): books the difference as an adjustment (none if equal)."""
    now = now or timezone.now()
    if not isinstance(on_hand, int) or isinstance(on_hand, bool) or not 0 <= on_hand <= MAX_QUANTITY:
        raise JiumaError(E.INVALID_QUANTITY, _("在库数量无效。"), fields={"on_hand": str(on_hand)[:20]})
    source = _staff_source("adjust", ref)
    _known_sku(sku_id)
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(_ENSURE, [sku_id, now])
        stock = Stock.objects.select_for_update().get(pk=sku_id)
        delta = on_hand - stock.on_hand
        if delta == 0:
            return stock
        if on_hand < stock.reserved:
            raise Conflict(E.BELOW_RESERVED, _("在库数量不能少于订单已占用的数量（%(n)d）。") % {"n": stock.reserved})
        if _book(cursor, StockLine(sku_id, abs(delta), source), StockMovementKind.ADJUST, delta, 0, now, note, actor):
            cursor.execute(_ADJUST, [delta, now, sku_id, delta])
    return Stock.objects.get(pk=sku_id)


def sellable_skus() -> QuerySet[Sku]:
    """SKUs the shop sells for cash, with `available` (0 without a stock row)."""
    from django.db.models import Value
    from django.db.models.functions import Coalesce

    return (
        Sku.objects.filter(SELLABLE_SKU)
        .select_related("product")
        .annotate(available=Coalesce(F("stock__on_hand") - F("stock__reserved"), Value(0)))
        .order_by("product__position", "product_id", "position", "id")
    )


def available(sku_id: int) -> int:
    stock = Stock.objects.filter(pk=sku_id).first()
    return stock.available if stock is not None else 0


def level_price(price_fen: int, level: MemberLevel | None, own_price_fen: int | None) -> tuple[int, str]:
    """The unit price for a member of `level` and where it comes from (member price or list)."""
    if level is None or not level.is_active:
        return price_fen, PriceSource.LIST
    member_price = own_price_fen if own_price_fen is not None else (price_fen * level.price_percent + 50) // 100
    if member_price < price_fen:
        return member_price, PriceSource.MEMBER
    return price_fen, PriceSource.LIST


def unit_prices(skus: Sequence[Sku], level: MemberLevel | None) -> dict[int, tuple[int, str]]:
    """Each SKU's unit price for a member of `level` (one query for the level's own prices)."""
    own: dict[int, int] = {}
    if level is not None and level.is_active and skus:
        own = dict(
            SkuLevelPrice.objects.filter(level=level, sku__in=[s.pk for s in skus]).values_list("sku_id", "price_fen")
        )
    return {sku.pk: level_price(sku.price_fen, level, own.get(sku.pk)) for sku in skus}


def unit_price(sku: Sku, level: MemberLevel | None) -> tuple[int, str]:
    return unit_prices([sku], level)[sku.pk]
