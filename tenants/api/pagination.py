"""Pagination of every list in the APIs."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """limit/offset pages. A larger limit is cut down to max_limit: unbounded, a huge one reached the
    database as LIMIT beyond bigint and failed (500)."""

    max_limit = 1000
