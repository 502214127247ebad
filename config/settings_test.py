"""Settings for the test suite: the project's settings with test-only speed-ups."""

import os
import tempfile
from pathlib import Path

from config.settings import *  # noqa: F403
from config.settings import CACHES, REST_FRAMEWORK

# Password hashing is not what the tests test; PBKDF2 would dominate their run time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each xdist worker has its own test database, so it needs its own task queue and cache keys; the
# test database name is part of them too, so two suites on one machine (DATABASE_TEST_NAME set
# differently) never take each other's tasks or cache entries.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
_suite = f"{DATABASES['default']['TEST']['NAME']}-{_worker}"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = f"jiuma-test-{_suite}"
CACHES["default"]["KEY_PREFIX"] = f"jiuma-test-{_suite}"

# Tests that exercise throttling set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min", "ops": "100000/min"},
}
LOG_LEVEL = "WARNING"

# A fixed master key: the suite never depends on (or writes) the development key file. Servers the
# tests start get the same key (tests/support/server.py).
JIUMA_MASTER_KEYS = "test:" + "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmchISE="

# Uploaded files and printer packages of the suite go to a temporary folder of its own. (Tests must
# not override MEDIA_ROOT: django-tenants' storage caches the media root and ignores the change.)
MEDIA_ROOT = Path(tempfile.gettempdir()) / f"jiuma-test-media-{_suite}"
