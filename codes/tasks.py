"""Celery tasks of codes/: thin wrappers over services, run in the brand's schema they were sent from."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from codes import services

logger = logging.getLogger(__name__)


@shared_task(name="codes.generate_batch_package", acks_late=True, max_retries=0)
def generate_batch_package(batch_id: int) -> dict[str, Any]:
    try:
        batch = services.generate_package(batch_id)
    except Exception as exc:
        logger.exception("generating the package of batch %s failed", batch_id)
        services.mark_failed(batch_id, f"{type(exc).__name__}: {exc}")
        raise
    return {"batch": batch.pk, "status": batch.status}


@shared_task(name="codes.ensure_scan_partitions")
def ensure_scan_partitions() -> list[str]:
    """Daily in every ready brand (beat): the scans table's partitions for the coming months."""
    from codes.partitions import ensure_scan_partitions as ensure

    return ensure()
