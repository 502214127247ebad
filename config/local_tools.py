"""The development tools in platform/local/ (the local services, the WeChat simulator), loaded by
path for the tests and the benchmarks: `platform/` is not a package, since it would shadow the
standard library's `platform` module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LOCAL = Path(__file__).resolve().parents[1] / "platform" / "local"
NAMES = {"services": "jiuma_local_services", "wechat_simulator": "jiuma_wechat_simulator"}


def local_module(stem: str) -> ModuleType:
    """platform/local/<stem>.py as module `jiuma_<stem>` (loaded once per process)."""
    name = NAMES.get(stem, f"jiuma_{stem}")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LOCAL / f"{stem}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {LOCAL / f'{stem}.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module
