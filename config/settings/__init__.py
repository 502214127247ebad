"""Settings, split by concern. Every value that differs between machines comes from the environment."""

from .api import *  # noqa: F403
from .base import *  # noqa: F403
from .cache import *  # noqa: F403
from .celery import *  # noqa: F403
from .database import *  # noqa: F403
from .jiuma import *  # noqa: F403
from .logging import *  # noqa: F403
from .security import *  # noqa: F403
