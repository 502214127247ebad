"""The local WeChat simulator (platform/local/wechat_simulator.py) for tests: started once per session
on a loopback port, and a brand's WeChat settings pointed at it.

    def test_x(alpha_wechat: WeChatBrand) -> None: ...   # alpha has an official account in the simulator
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from config.local_tools import local_module
from tests.conftest import Brand

ROOT = Path(__file__).resolve().parents[2]


def simulator_module() -> ModuleType:
    """platform/local/wechat_simulator.py (config.local_tools)."""
    return local_module("wechat_simulator")


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


def NotificationCatcher() -> Any:
    """The simulator's NotifyCatcher (records what WeChat Pay posts to the brand's notify URL)."""
    return simulator_module().NotifyCatcher()


@dataclass(frozen=True)
class PayBrand:
    brand: Brand
    mchid: str
    sim: Any  # the running simulator
    catcher: Any  # the simulator's NotifyCatcher

    @property
    def simulator(self) -> Any:
        return self.sim.simulator


@pytest.fixture
def alpha_pay(alpha: Brand, wechat_sim: Any) -> Iterator[PayBrand]:
    """alpha with an official account and a WeChat Pay merchant in the simulator; notifications go to
    a catcher; WeChat calls time out after half a second."""
    from commerce.wechat import config

    module = simulator_module()
    appid, secret = f"wx{alpha.tenant.number:016d}", f"secret-{alpha.tenant.number}"
    mchid = f"19{alpha.tenant.number:08d}"
    credentials = module.merchant_credentials()
    apiv3_key = "k" * 32
    simulator = wechat_sim.simulator
    simulator.add_official_account(appid, secret)
    platform = simulator.add_merchant(
        mchid, appid, credentials.public_key_pem, credentials.cert_serial_no, apiv3_key, module.MerchantOptions()
    )
    simulator.configure(timeout_seconds=1.5, notify_retry_schedule=(0.05,))
    simulator.clear_faults()
    catcher = NotificationCatcher()
    with (
        override_settings(
            WECHAT_OAUTH_BASE_URL=f"{wechat_sim.base_url}/connect/",
            WECHAT_API_BASE_URL=f"{wechat_sim.base_url}/",
            WECHAT_PAY_BASE_URL=wechat_sim.base_url,
            WECHAT_PAY_NOTIFY_URL=catcher.url,
            WECHAT_TIMEOUT_SECONDS=0.5,
        ),
        tenant_context(alpha.tenant),
    ):
        config.save(
            appid=appid,
            secret=secret,
            mchid=mchid,
            merchant_serial_no=credentials.cert_serial_no,
            private_key=credentials.private_key_pem,
            apiv3_key=apiv3_key,
            platform_public_key_id=platform.public_key_id,
            platform_public_key=platform.public_key_pem,
        )
        try:
            yield PayBrand(brand=alpha, mchid=mchid, sim=wechat_sim, catcher=catcher)
        finally:
            config.forget()
            simulator.clear_faults()
            catcher.stop()
