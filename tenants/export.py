"""Full export of one brand: every row of its schema (JSON lines) and its uploaded files, in one zip.

Made before a brand is deleted, and on request. The manifest lists row counts per model and the
SHA-256 of each member so the export can be checked later.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.db import router
from django.db.models import Model
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.db import connection
from tenants.models import OperationStatus, TenantOperation

log = logging.getLogger(__name__)

# Sessions and login-throttle rows are transient and hold secrets; they are not brand data.
_SKIP_MODELS = {"sessions.session", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}


def _tenant_models() -> list[type[Model]]:
    result = []
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in _SKIP_MODELS or model._meta.proxy or not model._meta.managed:
            continue
        if router.allow_migrate_model("default", model):
            result.append(model)
    return result


def write_export(schema_name: str, target: Path) -> dict[str, object]:
    """Write the export of `schema_name` to `target` (a .zip). Must run inside that schema."""
    assert connection.schema_name == schema_name
    counts: dict[str, int] = {}
    digests: dict[str, str] = {}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("data.jsonl", "w") as raw:
            digest = hashlib.sha256()
            stream = io.TextIOWrapper(raw, encoding="utf-8")
            for model in _tenant_models():
                n = 0
                for obj in model._default_manager.order_by("pk").iterator(chunk_size=2000):
                    line = serializers.serialize("jsonl", [obj])
                    stream.write(line if line.endswith("\n") else line + "\n")
                    digest.update(line.encode())
                    n += 1
                counts[model._meta.label_lower] = n
            stream.flush()
            stream.detach()
            digests["data.jsonl"] = digest.hexdigest()
        media_root = Path(settings.MEDIA_ROOT) / schema_name
        if media_root.is_dir():
            for path in sorted(media_root.rglob("*")):
                if path.is_file():
                    name = "media/" + path.relative_to(media_root).as_posix()
                    archive.write(path, name)
                    digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest = {"schema": schema_name, "exported_at": timezone.now().isoformat(), "rows": counts, "sha256": digests}
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    os.replace(tmp, target)
    return {
        "path": str(target),
        "bytes": target.stat().st_size,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "rows": sum(counts.values()),
    }


def run_export(operation_id: int) -> TenantOperation:
    schema_name = connection.schema_name
    with schema_context(get_public_schema_name()):
        claimed = TenantOperation.objects.filter(
            pk=operation_id, status=OperationStatus.QUEUED, tenant__schema_name=schema_name
        ).update(status=OperationStatus.RUNNING, started_at=timezone.now())
        op = TenantOperation.objects.get(pk=operation_id)
    if not claimed:
        return op
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    target = Path(settings.EXPORT_ROOT) / schema_name / f"{schema_name}-{stamp}-{operation_id}.zip"
    try:
        result = write_export(schema_name, target)
    except Exception as exc:
        log.exception("export of %s failed", schema_name)
        with schema_context(get_public_schema_name()):
            TenantOperation.objects.filter(pk=operation_id).update(
                status=OperationStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
            )
    else:
        with schema_context(get_public_schema_name()):
            TenantOperation.objects.filter(pk=operation_id).update(
                status=OperationStatus.SUCCEEDED, result=result, finished_at=timezone.now()
            )
    with schema_context(get_public_schema_name()):
        op.refresh_from_db()
    return op
