"""Request body parsing for every API: whatever the body, a bad one is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing two bodies it lets through.

    Deeply nested arrays or objects make the decoder recurse past Python's limit (RecursionError,
    a 500 from a few kilobytes); a bare `null` becomes no data at all, which serializers answer
    with an untranslated English error.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            data: Any = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError() from exc
        if data is None:
            raise ParseError()
        return data
