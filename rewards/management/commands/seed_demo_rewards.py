"""The demo brand's WeChat (in the local simulator) and a running scan-to-win campaign.

Run by `make demo` after seed_demo_codes, with the JIUMA_WECHAT_* endpoints pointing at the simulator
the demo started. The simulator keeps its state in memory, so every run registers the brand's
official account and merchant again (new keys) and saves them in the brand's WeChat settings.
Refuses production.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce.wechat import config
from rewards.models import Campaign, CampaignStatus
from rewards.services import campaigns
from rewards.services.campaigns import PrizeSpec
from tenants.models import Tenant

DEMO_PRIZES = [
    PrizeSpec(name="特等奖", kind="cash", amount_fen=8_800, odds_ppm=2_000, quantity=20),
    PrizeSpec(name="一等奖", kind="cash", amount_fen=888, odds_ppm=50_000, quantity=500),
    PrizeSpec(name="二等奖", kind="cash", amount_fen=188, odds_ppm=300_000, quantity=5_000),
    PrizeSpec(name="酒币奖", kind="points", points=50, odds_ppm=400_000, quantity=10_000),
    PrizeSpec(name="首扫红包", kind="cash", amount_fen=88, odds_ppm=0, quantity=2_000, is_guarantee=True),
]


def _control(path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{settings.WECHAT_PAY_BASE_URL.rstrip('/')}{path}"
    request = urllib.request.Request(  # noqa: S310 (the local simulator)
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
    return answer


class Command(BaseCommand):
    help = "Register the demo brand with the WeChat simulator and start a scan-to-win campaign."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--brand", default="demo")

    def handle(self, *args: Any, **opts: Any) -> None:
        if os.environ.get("JIUMA_ENV") == "production" or not settings.WECHAT_SIMULATED:
            raise CommandError("demo data against the WeChat simulator only (JIUMA_WECHAT_SIMULATED)")
        tenant = Tenant.objects.filter(code=opts["brand"]).first()
        if tenant is None:
            raise CommandError(f"no brand {opts['brand']!r}; run seed_demo first")
        appid, secret = f"wxdemo{tenant.number:012d}", secrets.token_hex(16)
        mchid, apiv3_key = f"19{tenant.number:08d}", secrets.token_hex(16)
        _control("/_sim/official-accounts", {"appid": appid, "secret": secret})
        credentials = _control("/_sim/merchant-credentials", {})
        platform = _control(
            "/_sim/merchants",
            {
                "mchid": mchid,
                "appid": appid,
                "merchant_public_key_pem": credentials["public_key_pem"],
                "merchant_cert_serial_no": credentials["cert_serial_no"],
                "apiv3_key": apiv3_key,
            },
        )
        with tenant_context(tenant):
            config.save(
                appid=appid,
                secret=secret,
                oauth_scope="snsapi_userinfo",
                mchid=mchid,
                merchant_serial_no=credentials["cert_serial_no"],
                private_key=credentials["private_key_pem"],
                apiv3_key=apiv3_key,
                platform_public_key_id=platform["public_key_id"],
                platform_public_key=platform["public_key_pem"],
            )
            now = timezone.now()
            running = Campaign.objects.filter(status=CampaignStatus.PUBLISHED, ends_at__gt=now).first()
            if running is None:
                start = now + timedelta(seconds=2)
                running = campaigns.create_campaign(
                    name="开瓶扫码赢红包",
                    description="演示活动：开瓶扫描盖内码，即时开奖。",
                    starts_at=start,
                    ends_at=start + timedelta(days=30),
                    prizes=DEMO_PRIZES,
                    budget_fen=2_000_000,
                    first_scan_guarantee=True,
                    member_daily_cap=5,
                    organiser=tenant.name,
                    contact="400-000-0000",
                    created_by="seed_demo_rewards",
                )
                campaigns.publish(running, now=now)
                time.sleep(max(0.0, (start - timezone.now()).total_seconds()))
        self.stdout.write(f"demo WeChat: official account {appid}, merchant {mchid} (in the simulator)")
        self.stdout.write(f"demo campaign #{running.pk} {running.name}: rules at /r/{running.pk}/ on the brand site")
