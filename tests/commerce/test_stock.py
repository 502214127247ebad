"""Stock: guarded reserve / release / ship with one movement per source, staff changes that never
go under what orders hold, and member-level prices (half-up rounding)."""

from __future__ import annotations

import pytest

from commerce.models import MemberLevel, SkuLevelPrice, Stock, StockMovement
from commerce.services import catalog
from commerce.services.catalog import StockLine
from tenants.errors import JiumaError
from tests.commerce.test_orders import _n, product_sku
from tests.conftest import Brand


def counts(sku_id: int) -> tuple[int, int]:
    row = Stock.objects.get(pk=sku_id)
    return row.on_hand, row.reserved


def test_reserve_release_and_ship_move_the_counters_once_per_source(in_alpha: Brand) -> None:
    sku = product_sku(on_hand=10)
    catalog.reserve([StockLine(sku.pk, 4, "line:1"), StockLine(sku.pk, 3, "line:2")])
    assert counts(sku.pk) == (10, 7)
    assert catalog.available(sku.pk) == 3
    catalog.reserve([StockLine(sku.pk, 4, "line:1")])  # the same source again: nothing more
    assert counts(sku.pk) == (10, 7)
    catalog.release([StockLine(sku.pk, 3, "line:2")])
    catalog.release([StockLine(sku.pk, 3, "line:2")])
    assert counts(sku.pk) == (10, 4)
    catalog.ship([StockLine(sku.pk, 4, "line:1")])
    catalog.ship([StockLine(sku.pk, 4, "line:1")])
    assert counts(sku.pk) == (6, 0)
    assert catalog.restock(StockLine(sku.pk, 2, "aftersale:9"))
    assert not catalog.restock(StockLine(sku.pk, 2, "aftersale:9"))
    assert counts(sku.pk) == (8, 0)
    moves = StockMovement.objects.filter(sku=sku)
    assert sum(m.on_hand_delta for m in moves) == 8
    assert sum(m.reserved_delta for m in moves) == 0


def test_reserving_more_than_is_available_is_refused(in_alpha: Brand) -> None:
    sku = product_sku(on_hand=5)
    catalog.reserve([StockLine(sku.pk, 5, "line:1")])
    with pytest.raises(JiumaError) as caught:
        catalog.reserve([StockLine(sku.pk, 1, "line:2")])
    assert (caught.value.code, caught.value.status_code) == ("insufficient_stock", 409)
    with pytest.raises(JiumaError) as caught:
        catalog.release([StockLine(sku.pk, 6, "line:1")])
    assert caught.value.code == "stock_not_held"
    assert counts(sku.pk) == (5, 5)


def test_staff_adjustments_never_go_under_what_orders_hold(in_alpha: Brand) -> None:
    sku = product_sku(on_hand=10)
    catalog.reserve([StockLine(sku.pk, 6, "line:1")])
    with pytest.raises(JiumaError) as caught:
        catalog.adjust(sku.pk, -5, ref="count-1", actor="staff:w")
    assert caught.value.code == "stock_below_reserved"
    with pytest.raises(JiumaError):
        catalog.set_on_hand(sku.pk, 5, ref="count-2", actor="staff:w")
    assert catalog.adjust(sku.pk, -4, ref="count-3", actor="staff:w").on_hand == 6
    assert catalog.set_on_hand(sku.pk, 20, ref="count-4", actor="staff:w").on_hand == 20
    assert catalog.inbound(sku.pk, 5, ref="in-1", actor="staff:w").on_hand == 25
    assert catalog.inbound(sku.pk, 5, ref="in-1", actor="staff:w").on_hand == 25  # once per ref
    with pytest.raises(JiumaError):
        catalog.inbound(sku.pk, 0, ref="in-2", actor="staff:w")


def test_member_prices_round_half_up_and_never_exceed_the_list_price(in_alpha: Brand) -> None:
    level = MemberLevel.objects.create(name=f"银卡{_n()}", rank=_n() % 30000, min_points=0, price_percent=95)
    a, b, c = product_sku(1_990), product_sku(1_999), product_sku(1_000)
    SkuLevelPrice.objects.create(sku=c, level=level, price_fen=1_200)
    prices = catalog.unit_prices([a, b, c], level)
    assert prices[a.pk] == (1_891, "member")  # 1890.5 → 1891
    assert prices[b.pk] == (1_899, "member")  # 1899.05 → 1899
    assert prices[c.pk] == (1_000, "list")  # its own price is higher: the list price
    assert catalog.unit_price(a, None) == (1_990, "list")
    assert catalog.sellable_skus().filter(pk=a.pk).get().available == 100  # type: ignore[attr-defined]
