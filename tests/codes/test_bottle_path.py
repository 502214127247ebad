"""A bottle's channel in one statement (codes.channel.bottle_path) agrees with the long way
(channel_of_bottle: case, then its outbound, else its pallet's) in every packing there is."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from codes import channel, services
from codes import format as code_format
from codes.keyring import keyring
from codes.models import CodeLink, MovementKind, SerialGroup
from commerce.services import channel as channel_services
from tests.conftest import Brand


@pytest.fixture
def setup(alpha: Brand) -> Any:
    keyring.clear()
    with tenant_context(alpha.tenant):
        north = channel_services.create_dealer(code="PN01", name="北区经销商", areas=["520100"])
        south = channel_services.create_dealer(code="PS01", name="南区经销商", areas=["520300"])
        store = channel_services.create_store(code="PS001", name="一号门店", dealer_id=north.pk, region_code="520102")
        # 4 pallets of 2 cases of 6 bottles; a second batch whose cases some bottles get linked to.
        first = services.create_batch(services.BatchRequest(bottles=48, bottles_per_case=6, cases_per_pallet=2))
        second = services.create_batch(services.BatchRequest(bottles=24, bottles_per_case=6, cases_per_pallet=2))
        yield {"brand": alpha, "north": north, "south": south, "store": store, "first": first, "second": second}


def _text(setup: Any, kind: code_format.Kind, serial: int) -> str:
    return code_format.make(keyring.current_key(setup["brand"].tenant.number), kind, serial)


def _move(setup: Any, kind: str, group_kind: code_format.Kind, serial: int, dealer: Any = None) -> None:
    result = channel.record_movement(
        _text(setup, group_kind, serial),
        kind,
        dealer=dealer or setup["north"],
        store=setup["store"] if kind == MovementKind.RECEIVE else None,
    )
    assert result.movement is not None, result.message


def _agrees(serial: int) -> channel.BottlePath | None:
    path = channel.bottle_path(serial)
    long_way = channel.channel_of_bottle(serial)
    assert (path.dealer_id if path is not None else None) == (long_way.dealer.pk if long_way is not None else None)
    if long_way is not None:
        assert path is not None
        assert path.outbound_at == long_way.outbound_at
        assert path.case_serial == long_way.case_serial
    return path


def test_sequential_packing_pallet_and_case_movements(setup: Any) -> None:
    first = setup["first"]
    bottles = range(first.first_bottle_serial, first.first_bottle_serial + 48)
    assert all(_agrees(serial) is not None for serial in bottles)  # known cases, nothing shipped yet
    assert channel.bottle_path(first.first_bottle_serial).dealer_id is None  # type: ignore[union-attr]
    _move(setup, MovementKind.OUTBOUND, code_format.Kind.PALLET, first.first_pallet_serial)  # cases 0, 1
    _move(setup, MovementKind.OUTBOUND, code_format.Kind.CASE, first.first_case_serial + 1, setup["south"])
    _move(setup, MovementKind.OUTBOUND, code_format.Kind.CASE, first.first_case_serial + 4, setup["south"])
    _move(setup, MovementKind.RECEIVE, code_format.Kind.CASE, first.first_case_serial)
    for serial in bottles:
        _agrees(serial)
    in_case = [channel.bottle_path(first.first_bottle_serial + 6 * case) for case in (0, 1, 2, 4)]
    assert [path.dealer_id for path in in_case] == [  # type: ignore[union-attr]
        setup["north"].pk,  # the pallet's outbound
        setup["south"].pk,  # its own case's outbound wins over the pallet's
        None,
        setup["south"].pk,
    ]
    assert [path.store_id for path in in_case] == [setup["store"].pk, None, None, None]  # type: ignore[union-attr]
    assert in_case[0].pallet_serial == first.first_pallet_serial  # type: ignore[union-attr]


def test_linked_cases_and_pallets_including_a_case_of_another_batch(setup: Any) -> None:
    first, second = setup["first"], setup["second"]
    bottle = first.first_bottle_serial + 3
    other_case = second.first_case_serial + 2  # packed sequentially on the second batch's pallet 1
    CodeLink.objects.create(
        child_group=SerialGroup.BOTTLE, child_serial=bottle, parent_group=SerialGroup.CASE, parent_serial=other_case
    )
    assert _agrees(bottle).case_serial == other_case  # type: ignore[union-attr]
    _move(setup, MovementKind.OUTBOUND, code_format.Kind.PALLET, second.first_pallet_serial + 1, setup["south"])
    _move(setup, MovementKind.RECEIVE, code_format.Kind.PALLET, second.first_pallet_serial + 1, setup["south"])
    path = _agrees(bottle)
    assert path is not None
    assert (path.dealer_id, path.store_id, path.pallet_serial) == (
        setup["south"].pk,
        setup["store"].pk,
        second.first_pallet_serial + 1,
    )
    # A linked pallet of a case wins over sequential packing.
    moved = first.first_case_serial + 5
    CodeLink.objects.create(
        child_group=SerialGroup.CASE,
        child_serial=moved,
        parent_group=SerialGroup.PALLET,
        parent_serial=second.first_pallet_serial + 1,
    )
    path = _agrees(first.first_bottle_serial + 6 * 5)
    assert path is not None
    assert path.dealer_id == setup["south"].pk


def test_a_bottle_of_no_batch_has_no_path_and_one_statement_answers(setup: Any) -> None:
    assert channel.bottle_path(10**15) is None
    first = setup["first"]
    channel.bottle_path(first.first_bottle_serial)  # the batch cache is warm
    with CaptureQueriesContext(connection) as captured:
        channel.bottle_path(first.first_bottle_serial + 1)
    assert len(captured.captured_queries) == 1
