"""How the OpenAPI documents describe the project's own DRF authenticators (drf-spectacular finds an
extension by its target's import path once this module is imported, from TenantsConfig.ready)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """A brand's API key (warehouse and packing-line systems)."""

    target_class = "tenants.brand.api_keys.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "品牌 API 密钥：Authorization: Bearer jm_…"}


class OpsTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """A platform staff member's ops token."""

    target_class = "tenants.api.auth.OpsTokenAuthentication"
    name = "opsToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "运营令牌：Authorization: Bearer <token>"}


class OpsBasicScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """A platform staff member's username and password (HTTP Basic, realm jiuma-ops)."""

    target_class = "tenants.api.auth.OpsBasicAuthentication"
    name = "opsBasic"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic"}
