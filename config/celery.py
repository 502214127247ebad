"""The Celery app. tenant-schemas-celery's CeleryApp sends the current schema with every task and
runs the task in that schema on the worker."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("jiuma")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
