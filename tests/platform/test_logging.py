"""Every log line names the tenant it was written for, in text and in JSON form."""

from __future__ import annotations

import json
import logging

from django_tenants.utils import schema_context

from tenants.logging import ContextFilter, JsonFormatter, request_id_var
from tests.conftest import Brand


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("jiuma.test", logging.WARNING, __file__, 1, message, None, None)
    ContextFilter().filter(record)
    return record


def test_text_lines_carry_the_current_brand_schema_and_request_id(alpha: Brand) -> None:
    formatter = logging.Formatter("tenant=%(tenant)s request=%(request_id)s %(message)s")
    token = request_id_var.set("req-123")
    try:
        with schema_context(alpha.schema):
            line = formatter.format(_record("扫码"))
    finally:
        request_id_var.reset(token)
    assert line == f"tenant={alpha.schema} request=req-123 扫码"


def test_json_lines_are_one_object_with_the_tenant(beta: Brand) -> None:
    with schema_context(beta.schema):
        payload = json.loads(JsonFormatter().format(_record("出库")))
    assert payload["tenant"] == beta.schema
    assert payload["message"] == "出库"
    assert payload["level"] == "WARNING"


def test_responses_echo_the_callers_request_id_for_tracing(alpha: Brand) -> None:
    response = alpha.client().get("/api/v1/no-such-endpoint/", HTTP_X_REQUEST_ID="abc-42")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "abc-42"
