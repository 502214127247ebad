"""Celery tasks of commerce/: thin wrappers over services, run in the brand's schema they were sent from."""

from __future__ import annotations

from celery import shared_task

from commerce.services import points


@shared_task(name="commerce.expire_points")
def expire_points() -> int:
    """Daily in every ready brand (beat): points whose time has come lapse (returns how many)."""
    return points.expire_due()
