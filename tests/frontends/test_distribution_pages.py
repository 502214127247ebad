"""The distribution pages: the public rules say what the services do (two levels, no fee, reversal on
refund), a share link binds the visitor, and the affiliate centre shows balances by state and takes
withdrawal requests. Until config/urls_tenant.py includes frontends.urls_distribution, this module is
its own URLconf (the tenant URLs plus that include)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import override_settings
from django.urls import include, path
from django_tenants.utils import tenant_context

from commerce.models import (
    Affiliate,
    AffiliateCustomer,
    AffiliateStatus,
    CommissionEntry,
    CommissionKind,
    CommissionState,
    CommissionWithdrawal,
    DistributionPolicy,
    Member,
    WithdrawalStatus,
)
from commerce.services import distribution
from config.urls_tenant import urlpatterns as tenant_urlpatterns
from tests.conftest import Brand
from tests.support.members import signed_in

urlpatterns = [*tenant_urlpatterns, path("", include("frontends.urls_distribution"))]

pytestmark = pytest.mark.usefixtures("_distribution_urls")


@pytest.fixture
def _distribution_urls() -> Any:
    with override_settings(ROOT_URLCONF=__name__):
        yield


def _rules(**fields: Any) -> None:
    values: dict[str, Any] = {"is_enabled": True, "levels": 2, "rate_l1_bp": 1000, "rate_l2_bp": 250}
    values.update(fields)
    DistributionPolicy.objects.update_or_create(pk=1, defaults=values)


def _member(openid: str) -> Member:
    return Member.objects.create(openid=openid)


def test_the_rules_page_states_levels_rates_reversal_and_no_fee(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _rules(min_withdrawal_fen=500)
    page = alpha.client().get("/d/rules/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-levels="2"' in html
    assert "10%" in html
    assert "2.5%" in html
    assert "data-no-fee" in html
    assert "入门费" in html
    assert "data-no-third-level" in html
    assert "data-reversal" in html
    assert "为负数" in html
    assert "¥5" in html
    with tenant_context(alpha.tenant):
        _rules(levels=1, rate_l2_bp=0)
    html = alpha.client().get("/d/rules/").content.decode()
    assert 'data-levels="1"' in html
    assert "仅一级" in html


def test_a_share_link_binds_the_signed_in_visitor_once(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _rules()
        owner = _member("o-page-owner")
        affiliate = Affiliate.objects.create(member=owner, status=AffiliateStatus.ACTIVE, approved_at=owner.created_at)
        token = distribution.link_token(affiliate)
        visitor = _member("o-page-visitor")
    anonymous = alpha.client().get(f"/d/s/{token}/")
    assert anonymous.status_code == 302
    assert "/wx/login/" in anonymous["Location"]
    assert alpha.client().get("/d/s/forged/").status_code == 404
    assert signed_in(alpha, visitor).get(f"/d/s/{token}/").status_code == 302
    assert signed_in(alpha, owner).get(f"/d/s/{token}/").status_code == 302  # one's own link: no binding
    with tenant_context(alpha.tenant):
        assert AffiliateCustomer.objects.get(member=visitor).affiliate_id == affiliate.pk
        assert not AffiliateCustomer.objects.filter(member=owner).exists()


def test_the_affiliate_centre_applies_shows_balances_and_takes_a_withdrawal(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _rules(requires_approval=False, min_withdrawal_fen=100)
        me = _member("o-page-affiliate")
    assert alpha.client().get("/d/me/").status_code == 302  # sign in first
    client = signed_in(alpha, me)
    page = client.get("/d/me/").content.decode()
    assert "data-apply" in page
    assert client.post("/d/me/apply/").status_code == 302
    with tenant_context(alpha.tenant):
        affiliate = Affiliate.objects.get(member=me)
        assert affiliate.status == AffiliateStatus.ACTIVE
        CommissionEntry.objects.create(
            affiliate=affiliate,
            kind=CommissionKind.ADJUST,
            to_state=CommissionState.SETTLED,
            amount_fen=1_234,
            source="adjust:page",
        )
    page = client.get("/d/me/").content.decode()
    assert 'data-settled="1234"' in page
    assert 'data-pending="0"' in page
    assert re.search(r'data-link[^>]*|value="[^"]*/d/s/', page)
    assert "data-withdraw-form" in page
    refused = client.post("/d/me/withdraw/", {"amount": "20"})
    assert refused.status_code == 409
    assert "不足" in refused.content.decode()
    assert client.post("/d/me/withdraw/", {"amount": "x"}).status_code == 400
    assert client.post("/d/me/withdraw/", {"amount": "10.5"}).status_code == 302
    with tenant_context(alpha.tenant):
        withdrawal = CommissionWithdrawal.objects.get(affiliate=affiliate)
        assert (withdrawal.amount_fen, withdrawal.status) == (1_050, WithdrawalStatus.REQUESTED)
    page = client.get("/d/me/").content.decode()
    assert f'data-open-withdrawal="{withdrawal.pk}"' in page
    assert 'data-settled="184"' in page
    stranger = signed_in(alpha, _in(alpha, lambda: _member("o-page-stranger")))
    assert stranger.post(f"/d/me/withdrawals/{withdrawal.pk}/cancel/").status_code == 404
    assert client.post(f"/d/me/withdrawals/{withdrawal.pk}/cancel/").status_code == 302
    assert 'data-settled="1234"' in client.get("/d/me/").content.decode()


def _in(brand: Brand, make: Any) -> Any:
    with tenant_context(brand.tenant):
        return make()
