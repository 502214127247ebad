"""Codes in the sales channel: dealer outbound (出库) and store receiving (入库) by case or pallet
code, a bottle's channel derived from its case, and anti-diversion (防窜货) alerts on scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from codes import format as code_format
from codes.association import parent_of
from codes.keyring import check
from codes.models import AlertSeverity, Batch, DiversionAlert, LocatedBy, Movement, MovementKind, SerialGroup
from codes.services import batch_of, current_tenant
from commerce import regions
from commerce.models import ChannelStatus, Dealer, Store
from commerce.selectors import dealer_covers, effective_area_codes

# A dealer with this many alerts in the last week is a pattern, not an accident.
PATTERN_ALERTS = 3
PATTERN_WINDOW = timedelta(days=7)


class MoveOutcome(StrEnum):
    RECORDED = "recorded"
    REPEATED = "repeated"  # the same movement was recorded already: nothing new
    NOT_GENUINE = "not_genuine"
    NOT_A_CASE = "not_a_case"
    DEALER_MISMATCH = "dealer_mismatch"  # recorded, but the store's dealer is not who shipped it


_MESSAGES = {
    MoveOutcome.RECORDED: "已记录。",
    MoveOutcome.REPEATED: "该箱已扫过，无需重复扫码。",
    MoveOutcome.NOT_GENUINE: "不是本品牌的有效码。",
    MoveOutcome.NOT_A_CASE: "请扫描箱码或托盘码。",
    MoveOutcome.DEALER_MISMATCH: "已入库，但该箱不是由本店的供货经销商出库的，已通知品牌核查。",
}


@dataclass(frozen=True)
class MoveResult:
    outcome: MoveOutcome
    movement: Movement | None = None
    bottles: int = 0

    @property
    def message(self) -> str:
        return _(_MESSAGES[self.outcome])


def _bottles_in(batch: Batch, group: SerialGroup) -> int:
    """Bottles in one case or pallet of `batch` (as packed)."""
    if group == SerialGroup.CASE:
        return batch.bottles_per_case or 0
    return (batch.cases_per_pallet or 0) * (batch.bottles_per_case or 0)


def record_movement(
    text: str,
    kind: MovementKind,
    *,
    dealer: Dealer | None = None,
    store: Store | None = None,
    by_name: str = "",
    source: str = "terminal",
) -> MoveResult:
    """One scanned case or pallet going out to `dealer` or into `store` (whose dealer it inherits)."""
    code = check(code_format.from_scan(text), tenant_number=current_tenant().number)
    if code is None:
        return MoveResult(MoveOutcome.NOT_GENUINE)
    if code.kind not in (code_format.Kind.CASE, code_format.Kind.PALLET):
        return MoveResult(MoveOutcome.NOT_A_CASE)
    group = SerialGroup.of(code.kind)
    batch = batch_of(group, code.serial)
    if batch is None:
        return MoveResult(MoveOutcome.NOT_GENUINE)
    bottles = _bottles_in(batch, group)
    if kind == MovementKind.RECEIVE:
        if store is None or store.status != ChannelStatus.ACTIVE:
            raise ValueError("receiving needs an active store")
        dealer = store.dealer
    if dealer is None or dealer.status != ChannelStatus.ACTIVE:
        raise ValueError("an outbound needs an active dealer")
    with transaction.atomic():
        last = (
            Movement.objects.select_for_update()
            .filter(group=group, serial=code.serial, kind=kind)
            .order_by("-at", "-id")
            .first()
        )
        if last is not None and last.dealer_id == dealer.pk and last.store_id == (store.pk if store else None):
            return MoveResult(MoveOutcome.REPEATED, last, bottles)
        outcome = MoveOutcome.RECORDED
        if kind == MovementKind.RECEIVE:
            shipped = latest_outbound(group, code.serial)
            if shipped is not None and shipped.dealer_id != dealer.pk:
                outcome = MoveOutcome.DEALER_MISMATCH
        movement = Movement.objects.create(
            kind=kind,
            group=group,
            serial=code.serial,
            dealer=dealer,
            store=store,
            by_name=by_name[:80],
            source=source[:20],
        )
    return MoveResult(outcome, movement, bottles)


def latest_outbound(group: SerialGroup, serial: int) -> Movement | None:
    return (
        Movement.objects.filter(group=group, serial=serial, kind=MovementKind.OUTBOUND)
        .select_related("dealer")
        .order_by("-at", "-id")
        .first()
    )


@dataclass(frozen=True)
class BottleChannel:
    dealer: Dealer
    outbound_at: datetime
    case_serial: int | None
    pallet_serial: int | None


def channel_of_bottle(serial: int) -> BottleChannel | None:
    """The dealer a bottle was shipped to: its case's latest outbound, else its pallet's."""
    case = parent_of(SerialGroup.BOTTLE, serial)
    if case is None:
        return None
    shipped = latest_outbound(SerialGroup.CASE, case[1])
    if shipped is not None:
        return BottleChannel(shipped.dealer, shipped.at, case[1], None)
    pallet = parent_of(SerialGroup.CASE, case[1])
    if pallet is None:
        return None
    shipped = latest_outbound(SerialGroup.PALLET, pallet[1])
    if shipped is None:
        return None
    return BottleChannel(shipped.dealer, shipped.at, case[1], pallet[1])


def _latest_receive(group: SerialGroup, serial: int) -> Movement | None:
    return (
        Movement.objects.filter(group=group, serial=serial, kind=MovementKind.RECEIVE)
        .select_related("store")
        .order_by("-at", "-id")
        .first()
    )


def received_store_of_bottle(serial: int) -> Store | None:
    """The store a bottle was received at (入库): the store of its case's latest receiving, else of its
    pallet's (a case received inside a pallet that was scanned whole). None if never received."""
    case = parent_of(SerialGroup.BOTTLE, serial)
    if case is None:
        return None
    received = _latest_receive(SerialGroup.CASE, case[1])
    if received is None:
        pallet = parent_of(SerialGroup.CASE, case[1])
        received = _latest_receive(SerialGroup.PALLET, pallet[1]) if pallet is not None else None
    return received.store if received is not None else None


def check_diversion(
    *, serial: int, scan_id: int, scanned_at: datetime, region_code: str, located_by: str = LocatedBy.IP
) -> DiversionAlert | None:
    """Raise an alert when a bottle is scanned clearly outside its dealer's areas (once per bottle).
    `located_by` says where the region came from (the scan's IP, or the position the consumer's
    phone shared) and goes into the evidence.

    Inconclusive places (a scan located less precisely than the dealer's areas, a dealer with no
    areas, an unknown region) never raise one.
    """
    if not region_code:
        return None
    channel = channel_of_bottle(serial)
    if channel is None or dealer_covers(channel.dealer, region_code) is not False:
        return None
    if DiversionAlert.objects.filter(serial=serial).exists():
        return None
    region = regions.get(region_code)
    areas = effective_area_codes(channel.dealer)
    area_provinces = {code[:2] for code in areas}
    severity = AlertSeverity.LOW if region_code[:2] in area_provinces else AlertSeverity.MEDIUM
    recent = DiversionAlert.objects.filter(
        dealer=channel.dealer, created_at__gte=timezone.now() - PATTERN_WINDOW
    ).count()
    if recent + 1 >= PATTERN_ALERTS:
        severity = AlertSeverity.HIGH
    evidence: dict[str, Any] = {
        "bottle_serial": serial,
        "case_serial": channel.case_serial,
        "pallet_serial": channel.pallet_serial,
        "dealer": {"id": channel.dealer.pk, "code": channel.dealer.code, "name": channel.dealer.name},
        "dealer_areas": [
            {"code": code, "name": getattr(regions.get(code), "full_name", code)} for code in sorted(areas)
        ],
        "outbound_at": timezone.localtime(channel.outbound_at).isoformat(),
        "scan": {
            "id": scan_id,
            "at": timezone.localtime(scanned_at).isoformat(),
            "region_code": region_code,
            "region": region.full_name if region else region_code,
            "located_by": str(located_by),
        },
    }
    try:
        with transaction.atomic():
            return DiversionAlert.objects.create(
                serial=serial,
                case_serial=channel.case_serial,
                dealer=channel.dealer,
                outbound_at=channel.outbound_at,
                scan_id=scan_id,
                scanned_at=scanned_at,
                scan_region_code=region_code,
                severity=severity,
                evidence=evidence,
            )
    except IntegrityError:  # another scan of the same bottle raised it a moment ago
        return None


# --- a bottle's whole channel in one statement (the scan-to-win path) ----------------------------


@dataclass(frozen=True)
class BottlePath:
    """Where a bottle went: its case and pallet, the dealer its case (else pallet) was last shipped
    to, and the store its case (else pallet) was last received at."""

    case_serial: int | None
    pallet_serial: int | None
    dealer_id: int | None
    outbound_at: datetime | None
    store_id: int | None


# The case of the bottle (an uploaded link, else sequential packing, passed in), the pallet of that
# case (likewise; the sequential pallet only when the case is the sequential one), then the latest
# outbound and the latest receiving of the case, else of the pallet: what channel_of_bottle and
# received_store_of_bottle find with up to six statements, in one.
_PATH = """
WITH c AS (
    SELECT COALESCE(
        (SELECT parent_serial FROM codes_codelink WHERE child_group = 'bottle' AND child_serial = %(bottle)s),
        %(seq_case)s::bigint
    ) AS serial
), p AS (
    SELECT c.serial AS case_serial,
           COALESCE(
               (SELECT l.parent_serial FROM codes_codelink l
                WHERE l.child_group = 'case' AND l.child_serial = c.serial),
               CASE WHEN c.serial = %(seq_case)s::bigint THEN %(seq_pallet)s::bigint END
           ) AS pallet_serial
    FROM c
    WHERE c.serial IS NOT NULL
)
SELECT p.case_serial, p.pallet_serial, o.dealer_id, o.at, r.store_id
FROM p
LEFT JOIN LATERAL (
    SELECT m.dealer_id, m.at FROM codes_movement m
    WHERE m.kind = 'outbound'
      AND ((m."group" = 'case' AND m.serial = p.case_serial) OR (m."group" = 'pallet' AND m.serial = p.pallet_serial))
    ORDER BY (m."group" = 'case') DESC, m.at DESC, m.id DESC
    LIMIT 1
) o ON true
LEFT JOIN LATERAL (
    SELECT m.store_id FROM codes_movement m
    WHERE m.kind = 'receive'
      AND ((m."group" = 'case' AND m.serial = p.case_serial) OR (m."group" = 'pallet' AND m.serial = p.pallet_serial))
    ORDER BY (m."group" = 'case') DESC, m.at DESC, m.id DESC
    LIMIT 1
) r ON true
"""


def bottle_path(serial: int) -> BottlePath | None:
    """The channel of a bottle (BottlePath) in one statement, or None when its case is unknown."""
    from codes.services import cached_batch_of
    from tenants.db import prepared

    batch = cached_batch_of(SerialGroup.BOTTLE, serial)
    seq_case = seq_pallet = None
    if batch is not None and batch.cases and batch.bottles_per_case:
        seq_case = (batch.first_case_serial or 0) + (
            serial - (batch.first_bottle_serial or 0)
        ) // batch.bottles_per_case
        if batch.pallets and batch.cases_per_pallet:
            index = seq_case - (batch.first_case_serial or 0)
            seq_pallet = (batch.first_pallet_serial or 0) + index // batch.cases_per_pallet
    with prepared(_PATH, {"bottle": serial, "seq_case": seq_case, "seq_pallet": seq_pallet}) as cursor:
        row = cursor.fetchone()
    if row is None:
        return None
    case_serial, pallet_serial, dealer_id, outbound_at, store_id = row
    if pallet_serial is None and case_serial != seq_case and (dealer_id is None or store_id is None):
        # A linked case from another batch, packed on its pallet sequentially: the rare long way.
        pallet = parent_of(SerialGroup.CASE, case_serial)
        if pallet is not None:
            pallet_serial = pallet[1]
            if dealer_id is None:
                shipped = _latest_of(MovementKind.OUTBOUND, SerialGroup.PALLET, pallet_serial)
                dealer_id, outbound_at = (shipped.dealer_id, shipped.at) if shipped is not None else (None, None)
            if store_id is None:
                received = _latest_of(MovementKind.RECEIVE, SerialGroup.PALLET, pallet_serial)
                store_id = received.store_id if received is not None else None
    return BottlePath(case_serial, pallet_serial, dealer_id, outbound_at, store_id)


def _latest_of(kind: str, group: SerialGroup, serial: int) -> Movement | None:
    return Movement.objects.filter(kind=kind, group=group, serial=serial).order_by("-at", "-id").first()
