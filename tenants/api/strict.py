"""Input serializers that refuse fields they do not know: a misspelt field is an error, not a no-op."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

# Sent by HTML forms (the browsable API) along with the fields themselves.
_FORM_EXTRAS = frozenset({"csrfmiddlewaretoken"})


class StrictSerializer(serializers.Serializer[Any]):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in writable and key not in _FORM_EXTRAS)
            if unknown:
                errors = {name: [_("不支持该字段。")] for name in unknown}
                raise serializers.ValidationError(errors, code="unknown_field")
        return super().to_internal_value(data)
