"""The project's settings, with the benchmark's trivial view added to the brand URLconf."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.scanbench.urls"
