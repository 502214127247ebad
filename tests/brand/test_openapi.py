"""The OpenAPI documents of both URL roots (brand hosts and the platform) generate without a single
drf-spectacular warning or error: every view's request and response is described, every
authenticator is known, no enum name is a hash."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator


@pytest.mark.parametrize("urlconf", ["config.urls_tenant", "config.urls_public"])
def test_the_openapi_document_generates_without_warnings(urlconf: str) -> None:
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    warnings, errors = list(GENERATOR_STATS._warn_cache), list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert warnings == []
    assert errors == []
    assert schema["paths"]
    names = set(schema["components"]["schemas"])
    assert not [name for name in names if name.startswith("Status") and name.endswith("Enum")]  # hashed names


def test_api_key_authentication_is_described_as_a_bearer_scheme() -> None:
    schema = SchemaGenerator(urlconf="config.urls_tenant").get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
