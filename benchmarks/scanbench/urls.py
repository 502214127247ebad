"""The project's brand URLs plus the trivial view the scan is compared with, in one server."""

from benchmarks.overhead.urls import urlpatterns as bench_patterns
from config.urls_tenant import urlpatterns as project_patterns

urlpatterns = [*bench_patterns, *project_patterns]
