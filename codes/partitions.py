"""Monthly partitions of the scans table (codes_scan), made ahead of time in the current schema.

A month's partition must exist before its first scan: rows that land in the default partition
would block creating it later. If that happened anyway (beat down for months), the rows of the
month are moved out of the default partition and into the new one in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from psycopg import sql

from tenants.db import connection


def _month(day: date, offset: int) -> date:
    index = day.year * 12 + day.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"codes_scan_y{month.year:04d}m{month.month:02d}"


def existing_partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            JOIN pg_namespace ns ON ns.oid = parent.relnamespace
            WHERE parent.relname = 'codes_scan' AND ns.nspname = current_schema()
            """
        )
        return {row[0] for row in cursor.fetchall()}


def ensure_scan_partitions(months_ahead: int = 3, today: date | None = None) -> list[str]:
    """Create the partitions of this month and the next `months_ahead`. Returns those created."""
    today = today or timezone.localdate()
    have = existing_partitions()
    created = []
    for offset in range(months_ahead + 1):
        start, end = _month(today, offset), _month(today, offset + 1)
        name = partition_name(start)
        if name in have:
            continue
        lower = datetime(start.year, start.month, 1, tzinfo=timezone.get_current_timezone()).isoformat()
        upper = datetime(end.year, end.month, 1, tzinfo=timezone.get_current_timezone()).isoformat()
        table = sql.Identifier(name)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE TABLE {} (LIKE codes_scan INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(table)
            )
            moved = sql.SQL(
                "WITH moved AS (DELETE FROM codes_scan_default WHERE scanned_at >= %s AND scanned_at < %s"
                " RETURNING *) INSERT INTO {} SELECT * FROM moved"
            ).format(table)
            cursor.execute(moved, [lower, upper])
            attach = sql.SQL("ALTER TABLE codes_scan ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(table)
            cursor.execute(attach, [lower, upper])
        created.append(name)
    return created
