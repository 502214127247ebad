"""The local WeChat simulator (platform/local/wechat_simulator.py) for tests: started once per session
on a loopback port, and a brand's WeChat settings pointed at it.

    def test_x(alpha_wechat: WeChatBrand) -> None: ...   # alpha has an official account in the simulator
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from tests.conftest import Brand

ROOT = Path(__file__).resolve().parents[2]


def simulator_module() -> ModuleType:
    """platform/local/wechat_simulator.py, loaded by path (platform/ is not a package)."""
    name = "jiuma_wechat_simulator"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "platform" / "local" / "wechat_simulator.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wechat_sim() -> Iterator[Any]:
    running = simulator_module().WeChatSimulator().start()
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class WeChatBrand:
    brand: Brand
    appid: str
    secret: str
    sim: Any  # the running simulator


@pytest.fixture
def alpha_wechat(alpha: Brand, wechat_sim: Any) -> Iterator[WeChatBrand]:
    from commerce.wechat import config

    appid, secret = f"wx{alpha.tenant.number:016d}", f"secret-{alpha.tenant.number}"
    wechat_sim.simulator.add_official_account(appid, secret)
    with (
        override_settings(
            WECHAT_OAUTH_BASE_URL=f"{wechat_sim.base_url}/connect/",
            WECHAT_API_BASE_URL=f"{wechat_sim.base_url}/",
            WECHAT_PAY_BASE_URL=wechat_sim.base_url,
        ),
        tenant_context(alpha.tenant),
    ):
        config.save(appid=appid, secret=secret, oauth_scope="snsapi_userinfo")
        try:
            yield WeChatBrand(brand=alpha, appid=appid, secret=secret, sim=wechat_sim)
        finally:
            config.forget()
