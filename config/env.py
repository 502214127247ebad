"""Environment access for settings.

Values come from the process environment. `make demo` / `make test` resolve the local services
(PostgreSQL, broker, cache) once and write what they chose to `.local/services.env`; that file
fills in only variables the environment does not already set, so an explicit DATABASE_URL or
CELERY_BROKER_URL always wins.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"

env = environ.Env()
_services_file = LOCAL_DIR / "services.env"
if _services_file.exists():
    environ.Env.read_env(str(_services_file), overwrite=False)
