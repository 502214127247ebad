"""Scan-to-win in the brand console's admin: campaigns created with their prize tables (yuan and
percent in, fen and parts per million stored, exactly), drafts edited, published campaigns read-only,
publish/cancel/end as confirmed actions, held red packets approved or rejected by those allowed to,
read-only draws and budget ledger, everything audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from rewards.admin import CampaignForm, format_percent, percent_to_ppm
from rewards.models import BudgetEntry, Campaign, CampaignStatus, Claim, ClaimStatus, Payout, PayoutStatus, Prize
from rewards.services import campaigns, claims
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.brand.admin import format_yuan, yuan_to_fen
from tenants.brand.models import AuditEntry
from tests.conftest import Brand
from tests.rewards.conftest import member, running_campaign

ADMIN = "/admin/rewards"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CASH = PrizeSpec(name="2.88元红包", kind="cash", amount_fen=288, odds_ppm=5_000, quantity=100)
POINTS = PrizeSpec(name="50酒币", kind="points", points=50, odds_ppm=100_000, quantity=1_000)


# --- helpers ----------------------------------------------------------------------------------------


def _prize_row(**fields: str) -> dict[str, str]:
    row = {"name": "红包", "kind": "cash", "amount_yuan": "", "points": "", "value_yuan": "", "quantity": "10"}
    row.update(fields)
    return row


def _campaign_form(prizes: list[dict[str, str]], *, existing: int = 0, **fields: str) -> dict[str, str]:
    """The add/change form of a campaign with its prize inline ("prizes" prefix); the first
    `existing` rows are the campaign's current prizes (with their "id", "DELETE" if to go)."""
    data = {
        "name": "开盖有奖",
        "description": "扫盖内码抽红包",
        "organiser": "阿尔法酒业",
        "contact": "400-800-0000",
        "starts_at_0": "2030-01-01",
        "starts_at_1": "10:00:00",
        "ends_at_0": "2030-02-01",
        "ends_at_1": "10:00:00",
        "priority": "0",
        "budget_yuan": "1000.10",
        "pacing": "on",
        "pacing_slack_percent": "20",
        "member_daily_cap": "0",
        "member_total_cap": "0",
        "target_regions": "",
        "prizes-TOTAL_FORMS": str(len(prizes)),
        "prizes-INITIAL_FORMS": str(existing),
        "prizes-MIN_NUM_FORMS": "0",
        "prizes-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    for index, row in enumerate(prizes):
        for key, value in row.items():
            data[f"prizes-{index}-{key}"] = value
    return data


def _draft(**fields: Any) -> Campaign:
    """A draft starting tomorrow (in the current brand)."""
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "草稿活动",
        "starts_at": now + timedelta(days=1),
        "ends_at": now + timedelta(days=31),
        "prizes": [CASH, POINTS],
        "budget_fen": 100_000,
    }
    values.update(fields)
    return campaigns.create_campaign(**values)


def _published(**fields: Any) -> Campaign:
    """Published, starting tomorrow (not started: it may still be cancelled)."""
    return campaigns.publish(_draft(**fields))


def _act(client: Client, model: str, action: str, ids: list[int], *, confirm: bool = True) -> Any:
    """An admin action on the changelist, as the confirmation page posts it (or, without `confirm`,
    as the changelist's action bar does: the confirmation page is answered)."""
    data: dict[str, Any] = {"action": action, "_selected_action": [str(pk) for pk in ids]}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = "0"
    return client.post(f"{ADMIN}/{model}/", data, follow=confirm)


def _held_payouts(count: int = 2) -> tuple[Campaign, list[Payout]]:
    """Real payouts won in a running campaign (claims.claim), then held by risk control."""
    campaign = running_campaign([replace(CASH, odds_ppm=1_000_000)])
    won = []
    for serial in range(1, count + 1):
        result = claims.claim(member(f"o-held-{serial}"), ClaimContext(serial=serial, region_code="520102"))
        assert result.payout is not None
        won.append(result.payout)
    Payout.objects.filter(pk__in=[p.pk for p in won]).update(status=PayoutStatus.HELD)
    Claim.objects.filter(pk__in=[p.claim_id for p in won]).update(
        status=ClaimStatus.HELD, risk_reasons=["同一设备多次中奖"]
    )
    return campaign, won


def _audit(object_type: str, object_id: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("id"))


# --- conversions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [("2.88", 288), ("0.1", 10), ("0.29", 29), ("50000.00", 5_000_000), ("1234567.89", 123_456_789)],
)
def test_yuan_become_fen_exactly(yuan: str, fen: int) -> None:
    assert yuan_to_fen(Decimal(yuan)) == fen
    assert format_yuan(fen).replace(",", "") == f"¥{Decimal(yuan):.2f}"


@pytest.mark.parametrize(("percent", "ppm"), [("0.5", 5_000), ("0.0001", 1), ("12.3456", 123_456), ("100", 1_000_000)])
def test_percent_becomes_parts_per_million_exactly(percent: str, ppm: int) -> None:
    assert percent_to_ppm(Decimal(percent)) == ppm
    assert format_percent(ppm) == f"{percent}%"


def test_finer_amounts_are_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="fen"):
        yuan_to_fen(Decimal("2.885"))
    with pytest.raises(ValueError, match="parts per million"):
        percent_to_ppm(Decimal("0.00005"))


# --- pages ------------------------------------------------------------------------------------------


def test_the_owner_opens_every_rewards_page(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        draft = _draft(name="春节草稿")
        campaign, (payout, _other) = _held_payouts()
        entry = BudgetEntry.objects.filter(campaign=campaign).first()
        assert entry is not None
    owner = alpha.client("owner")
    index = owner.get("/admin/").content.decode()
    for model in ("campaign", "claim", "payout", "budgetentry"):
        assert f"{ADMIN}/{model}/" in index, model
    pages = {
        f"{ADMIN}/campaign/": ["春节草稿", "¥1,000.00", "¥10,000.00", "¥5.76", "0/1100", "2/100", f"/r/{campaign.pk}/"],
        f"{ADMIN}/campaign/?status=draft": ["春节草稿"],
        f"{ADMIN}/campaign/?q=春节": ["春节草稿"],
        f"{ADMIN}/campaign/add/": ["prizes-TOTAL_FORMS", "中奖概率（%）", "现金预算（元）"],
        f"{ADMIN}/campaign/{draft.pk}/change/": ['name="prizes-0-odds_percent"', 'value="0.5000"', 'value="2.88"'],
        f"{ADMIN}/campaign/{campaign.pk}/change/": ["¥2.88", "100%", "¥5.76", f"/r/{campaign.pk}/"],
        f"{ADMIN}/claim/": ["中奖", "待审核", "贵州省贵阳市南明区", "开盖有奖"],
        f"{ADMIN}/claim/?status=held": ["待审核"],
        f"{ADMIN}/claim/{payout.claim_id}/change/": ["同一设备多次中奖", "贵州省贵阳市南明区"],
        f"{ADMIN}/payout/": [payout.out_bill_no, "¥2.88", "风控暂缓"],
        f"{ADMIN}/payout/?status=held": [payout.out_bill_no],
        f"{ADMIN}/payout/{payout.pk}/change/": [payout.out_bill_no, "¥2.88"],
        f"{ADMIN}/budgetentry/": ["+¥2.88", f"claim:{payout.claim_id}"],
        f"{ADMIN}/budgetentry/{entry.pk}/change/": ["+¥2.88"],
    }
    for path, texts in pages.items():
        response = owner.get(path)
        assert response.status_code == 200, path
        content = response.content.decode()
        for text in texts:
            assert text in content, (path, text)
    # Draws, payouts and the budget are written by the services only.
    for model in ("claim", "payout", "budgetentry"):
        assert owner.get(f"{ADMIN}/{model}/add/").status_code == 403, model
    assert owner.post(f"{ADMIN}/payout/{payout.pk}/delete/", {"post": "yes"}).status_code == 403
    assert owner.post(f"{ADMIN}/campaign/{draft.pk}/delete/", {"post": "yes"}).status_code == 403


# --- creating and editing campaigns -----------------------------------------------------------------


def test_a_campaign_is_created_with_its_prizes_in_yuan_and_percent(alpha: Brand) -> None:
    prizes = [
        _prize_row(name="2.88元红包", kind="cash", amount_yuan="2.88", odds_percent="0.5", quantity="100"),
        _prize_row(name="50酒币", kind="points", points="50", odds_percent="12.3456", quantity="1000"),
    ]
    response = alpha.client("owner").post(f"{ADMIN}/campaign/add/", _campaign_form(prizes, target_regions="520102"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.tenant):
        campaign = Campaign.objects.get(name="开盖有奖")
        assert campaign.status == CampaignStatus.DRAFT
        assert campaign.budget_fen == 100_010
        assert campaign.starts_at == datetime(2030, 1, 1, 10, tzinfo=SHANGHAI)
        assert campaign.ends_at == datetime(2030, 2, 1, 10, tzinfo=SHANGHAI)
        assert (campaign.created_by, campaign.target_region_codes) == ("owner", ["520102"])
        rows = list(
            Prize.objects.filter(campaign=campaign)
            .order_by("position")
            .values_list("name", "kind", "amount_fen", "points", "odds_ppm", "quantity", "position")
        )
        assert rows == [
            ("2.88元红包", "cash", 288, 0, 5_000, 100, 0),
            ("50酒币", "points", 0, 50, 123_456, 1_000, 1),
        ]
        (entry,) = _audit("rewards.campaign", campaign.pk)
    assert (entry.action, entry.via, entry.actor_name) == ("create", "admin", "owner")
    assert entry.after["budget_fen"] == 100_010
    assert [prize["odds_ppm"] for prize in entry.after["prizes"]] == [5_000, 123_456]


@pytest.mark.parametrize(
    ("prizes", "message"),
    [
        (
            [_prize_row(kind="cash", amount_yuan="50000.01", odds_percent="0.0001", quantity="1")],
            "单个奖项价值不得超过 50,000 元（抽奖式有奖销售的法定上限）。",
        ),
        (
            [_prize_row(name="汽车", kind="physical", value_yuan="50000.01", odds_percent="0.0001", quantity="1")],
            "单个奖项价值不得超过 50,000 元（抽奖式有奖销售的法定上限）。",
        ),
        (
            [
                _prize_row(amount_yuan="1", odds_percent="60"),
                _prize_row(amount_yuan="2", odds_percent="40.0001"),
            ],
            "各奖项中奖概率之和不能超过 100%。",
        ),
        ([_prize_row(amount_yuan="2.885", odds_percent="1")], "确认小数不超过 2 位"),
        ([_prize_row(amount_yuan="0.09", odds_percent="1")], "现金红包至少 0.10 元。"),
        ([_prize_row(amount_yuan="1", odds_percent="0.00001")], "确认小数不超过 4 位"),
        ([], "请至少设置一个奖项。"),
    ],
)
def test_the_add_form_refuses_what_the_rules_forbid_and_saves_nothing(
    alpha: Brand, prizes: list[dict[str, str]], message: str
) -> None:
    response = alpha.client("owner").post(f"{ADMIN}/campaign/add/", _campaign_form(prizes))
    assert response.status_code == 200, "the form is shown again"
    assert message in response.content.decode()
    with tenant_context(alpha.tenant):
        assert not Campaign.objects.exists()
        assert not Prize.objects.exists()
        assert not AuditEntry.objects.filter(object_type="rewards.campaign").exists()


def test_the_add_form_checks_the_campaign_fields_by_the_same_rules(alpha: Brand) -> None:
    owner = alpha.client("owner")
    prize = [_prize_row(amount_yuan="1", odds_percent="1")]
    backwards = owner.post(f"{ADMIN}/campaign/add/", _campaign_form(prize, ends_at_0="2029-12-31"))
    assert "结束时间须晚于开始时间。" in backwards.content.decode()
    nowhere = owner.post(f"{ADMIN}/campaign/add/", _campaign_form(prize, target_regions="520102, 999999"))
    assert "地区代码不存在。" in nowhere.content.decode()
    guaranteed = owner.post(f"{ADMIN}/campaign/add/", _campaign_form(prize, first_scan_guarantee="on"))
    assert "开启首扫必中须指定一个必中奖项。" in guaranteed.content.decode()
    with tenant_context(alpha.tenant):
        assert not Campaign.objects.exists()


def test_a_draft_is_edited_with_its_prize_table(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        draft = _draft()
        cash, points = Prize.objects.filter(campaign=draft).order_by("position")
    prizes = [
        _prize_row(id=str(cash.pk), name="3元红包", kind="cash", amount_yuan="3", odds_percent="1.25", quantity="80"),
        _prize_row(id=str(points.pk), name="50酒币", kind="points", points="50", odds_percent="10", DELETE="on"),
        _prize_row(name="纪念酒杯", kind="physical", value_yuan="39.90", odds_percent="0.01", quantity="5"),
    ]
    form = _campaign_form(prizes, existing=2, name="改过的活动", budget_yuan="88.8")
    response = alpha.client("owner").post(f"{ADMIN}/campaign/{draft.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    with tenant_context(alpha.tenant):
        draft.refresh_from_db()
        assert (draft.name, draft.budget_fen, draft.status) == ("改过的活动", 8_880, CampaignStatus.DRAFT)
        rows = list(
            Prize.objects.filter(campaign=draft)
            .order_by("position")
            .values_list("name", "kind", "amount_fen", "value_fen", "odds_ppm", "quantity")
        )
        assert rows == [("3元红包", "cash", 300, 0, 12_500, 80), ("纪念酒杯", "physical", 0, 3_990, 100, 5)]
        entries = _audit("rewards.campaign", draft.pk)
    assert [entry.action for entry in entries] == ["update"]
    assert entries[0].before["budget_fen"] == 100_000
    assert entries[0].after["budget_fen"] == 8_880
    assert [prize["name"] for prize in entries[0].before["prizes"]] == ["2.88元红包", "50酒币"]
    assert [prize["name"] for prize in entries[0].after["prizes"]] == ["3元红包", "纪念酒杯"]


def test_a_published_campaign_cannot_be_changed_in_the_admin(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        published = _published(name="已发布活动")
        cash, points = Prize.objects.filter(campaign=published).order_by("position")
        before = list(Prize.objects.filter(campaign=published).order_by("id").values())
    owner = alpha.client("owner")
    page = owner.get(f"{ADMIN}/campaign/{published.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "已发布活动" in content
    assert "0.5%" in content  # shown, not editable
    assert 'name="prizes-0-odds_percent"' not in content
    assert 'name="name"' not in content
    assert 'name="_save"' not in content
    prizes = [
        _prize_row(id=str(cash.pk), name="2.88元红包", kind="cash", amount_yuan="2.88", odds_percent="90"),
        _prize_row(id=str(points.pk), name="50酒币", kind="points", points="50", odds_percent="10", DELETE="on"),
    ]
    form = _campaign_form(prizes, existing=2, name="改名", ends_at_0="2099-01-01")
    assert owner.post(f"{ADMIN}/campaign/{published.pk}/change/", form).status_code == 403
    with tenant_context(alpha.tenant):
        after = Campaign.objects.get(pk=published.pk)
        assert (after.name, after.ends_at, after.status) == ("已发布活动", published.ends_at, CampaignStatus.PUBLISHED)
        assert list(Prize.objects.filter(campaign=published).order_by("id").values()) == before
        assert not AuditEntry.objects.filter(object_type="rewards.campaign", action="update").exists()


def test_the_change_form_refuses_a_campaign_published_meanwhile(alpha: Brand) -> None:
    """The form's own guard (the admin refuses a published campaign's change page before it): a
    draft opened for editing and published before the edit is saved."""
    with tenant_context(alpha.tenant):
        campaign = _draft()
        opened = Campaign.objects.get(pk=campaign.pk)
        campaigns.publish(campaign)
        form = CampaignForm(
            data=_campaign_form([], name="抢先修改"),
            instance=opened,
        )
        assert not form.is_valid()
        assert "活动已发布或已结束，规则不能再修改。" in form.non_field_errors()


# --- publish, cancel, end ---------------------------------------------------------------------------


def test_publishing_asks_first_then_publishes_and_audits(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        draft = _draft()
    owner = alpha.client("owner")
    asked = _act(owner, "campaign", "publish", [draft.pk], confirm=False)
    assert asked.status_code == 200
    assert "确认发布" in asked.content.decode()
    with tenant_context(alpha.tenant):
        assert Campaign.objects.get(pk=draft.pk).status == CampaignStatus.DRAFT
    done = _act(owner, "campaign", "publish", [draft.pk])
    assert "已发布 1 个活动。" in done.content.decode()
    assert f"/r/{draft.pk}/" in done.content.decode()
    with tenant_context(alpha.tenant):
        published = Campaign.objects.get(pk=draft.pk)
        assert published.status == CampaignStatus.PUBLISHED
        assert len(published.seed_commitment) == 64
        assert not published.seed_revealed
        (entry,) = _audit("rewards.campaign", draft.pk)
    assert (entry.action, entry.detail, entry.actor_name) == ("action", "发布活动", "owner")
    assert entry.before == {"status": "draft"}
    assert entry.after["status"] == "published"
    assert entry.after["seed_commitment"] == published.seed_commitment


def test_publishing_after_the_start_is_refused_with_the_reason(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        late = _draft()
        Campaign.objects.filter(pk=late.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    done = _act(alpha.client("owner"), "campaign", "publish", [late.pk])
    assert "活动规则须在开始前发布，请调整开始时间。" in done.content.decode()
    assert "已发布 1 个活动" not in done.content.decode()
    with tenant_context(alpha.tenant):
        assert Campaign.objects.get(pk=late.pk).status == CampaignStatus.DRAFT
        assert not _audit("rewards.campaign", late.pk)


def test_cancelling_is_allowed_before_the_start_only(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        upcoming = _published(name="未开始")
        running = running_campaign([CASH], name="进行中")
    owner = alpha.client("owner")
    assert "确认取消" in _act(owner, "campaign", "cancel", [upcoming.pk, running.pk], confirm=False).content.decode()
    done = _act(owner, "campaign", "cancel", [upcoming.pk, running.pk]).content.decode()
    assert "进行中：活动已开始，不能取消，只能到期结束。" in done
    assert "已取消 1 个活动。" in done
    with tenant_context(alpha.tenant):
        assert Campaign.objects.get(pk=upcoming.pk).status == CampaignStatus.CANCELLED
        assert Campaign.objects.get(pk=running.pk).status == CampaignStatus.PUBLISHED
        assert [e.detail for e in _audit("rewards.campaign", upcoming.pk)] == ["取消活动"]
        assert not _audit("rewards.campaign", running.pk)


def test_ending_reveals_the_seed_after_the_end_only(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        over = running_campaign([CASH], name="已到期")
        Campaign.objects.filter(pk=over.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
        running = running_campaign([CASH], name="进行中")
    owner = alpha.client("owner")
    done = _act(owner, "campaign", "end_and_reveal", [over.pk, running.pk]).content.decode()
    assert "进行中：活动尚未到结束时间。" in done
    assert "已结束 1 个活动。" in done
    assert f"/r/{over.pk}/draws/" in done
    assert f"/r/{running.pk}/draws/" not in done
    with tenant_context(alpha.tenant):
        ended = Campaign.objects.get(pk=over.pk)
        assert ended.status == CampaignStatus.ENDED
        assert len(ended.seed_revealed) == 64
        assert Campaign.objects.get(pk=running.pk).status == CampaignStatus.PUBLISHED
        (entry,) = _audit("rewards.campaign", over.pk)
    assert (entry.detail, entry.after["seed_revealed"]) == ("结束活动并公开种子", ended.seed_revealed)


def test_roles_without_change_permission_cannot_create_or_publish(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        draft = _draft()
    for role in ("finance", "customer_service"):
        client = alpha.client(role)
        assert client.get(f"{ADMIN}/campaign/").status_code == 200, role
        page = client.get(f"{ADMIN}/campaign/{draft.pk}/change/")
        assert page.status_code == 200, role
        assert 'name="prizes-0-odds_percent"' not in page.content.decode()
        assert client.get(f"{ADMIN}/campaign/add/").status_code == 403, role
        _act(client, "campaign", "publish", [draft.pk])
    with tenant_context(alpha.tenant):
        assert Campaign.objects.get(pk=draft.pk).status == CampaignStatus.DRAFT
    # The operator runs campaigns.
    _act(alpha.client("operator"), "campaign", "publish", [draft.pk])
    with tenant_context(alpha.tenant):
        assert Campaign.objects.get(pk=draft.pk).status == CampaignStatus.PUBLISHED


# --- held red packets -------------------------------------------------------------------------------


def test_held_payouts_are_approved_and_rejected_as_the_signed_in_user(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        campaign, (kept, refused) = _held_payouts()
        assert Campaign.objects.get(pk=campaign.pk).spent_fen == 576
    finance = alpha.client("finance")
    asked = _act(finance, "payout", "approve", [kept.pk], confirm=False).content.decode()
    assert "确认通过" in asked
    assert kept.out_bill_no in asked
    assert "已审核通过 1 笔红包。" in _act(finance, "payout", "approve", [kept.pk]).content.decode()
    assert "已驳回 1 笔红包。" in _act(alpha.client("owner"), "payout", "reject", [refused.pk]).content.decode()
    with tenant_context(alpha.tenant):
        kept.refresh_from_db()
        refused.refresh_from_db()
        assert kept.status == PayoutStatus.PENDING
        assert refused.status == PayoutStatus.CANCELLED
        approved_claim, rejected_claim = Claim.objects.get(pk=kept.claim_id), Claim.objects.get(pk=refused.claim_id)
        assert (approved_claim.status, approved_claim.reviewed_by) == (ClaimStatus.OK, "finance_alpha")
        assert (rejected_claim.status, rejected_claim.reviewed_by) == (ClaimStatus.REJECTED, "owner")
        # The rejected prize's cash and unit went back to the campaign.
        assert Campaign.objects.get(pk=campaign.pk).spent_fen == 288
        assert Prize.objects.get(campaign=campaign).awarded == 1
        assert BudgetEntry.objects.get(source=f"release:{refused.pk}").amount_fen == -288
        (approval,) = _audit("rewards.payout", kept.pk)
        (rejection,) = _audit("rewards.payout", refused.pk)
    assert (approval.actor_name, approval.detail, approval.after["status"]) == (
        "finance_alpha",
        "审核通过红包",
        "pending",
    )
    assert (rejection.actor_name, rejection.detail, rejection.after["status"]) == ("owner", "驳回红包", "cancelled")
    assert approval.before == rejection.before == {"status": "held"}


def test_only_held_payouts_are_reviewed(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _campaign, (held, pending) = _held_payouts()
        Payout.objects.filter(pk=pending.pk).update(status=PayoutStatus.PENDING)
    done = _act(alpha.client("owner"), "payout", "reject", [held.pk, pending.pk]).content.decode()
    assert f"{pending.out_bill_no}：该红包不在待审核状态。" in done
    assert "已驳回 1 笔红包。" in done
    with tenant_context(alpha.tenant):
        assert Payout.objects.get(pk=pending.pk).status == PayoutStatus.PENDING
        assert Payout.objects.get(pk=held.pk).status == PayoutStatus.CANCELLED
        assert not _audit("rewards.payout", pending.pk)


def test_roles_that_may_not_change_payouts_cannot_review_them(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _campaign, (payout, _other) = _held_payouts()
    service = alpha.client("customer_service")
    assert service.get(f"{ADMIN}/payout/").status_code == 403
    for action in ("approve", "reject"):
        assert _act(service, "payout", action, [payout.pk]).status_code == 403
    operator = alpha.client("operator")  # may read payouts, not review them
    listing = operator.get(f"{ADMIN}/payout/").content.decode()
    assert payout.out_bill_no in listing
    assert "审核通过" not in listing
    for action in ("approve", "reject"):
        _act(operator, "payout", action, [payout.pk])
    with tenant_context(alpha.tenant):
        assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.HELD
        assert Claim.objects.get(pk=payout.claim_id).status == ClaimStatus.HELD
        assert not _audit("rewards.payout", payout.pk)


def test_retry_now_makes_waiting_pending_payouts_due(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        _campaign, (waiting, held) = _held_payouts()
        later = timezone.now() + timedelta(hours=1)
        Payout.objects.filter(pk=waiting.pk).update(status=PayoutStatus.PENDING, next_attempt_at=later, attempts=3)
    before = timezone.now()
    done = _act(alpha.client("finance"), "payout", "retry_now", [waiting.pk, held.pk]).content.decode()
    assert "已安排 1 笔红包立即重试。" in done
    assert "1 笔未处理" in done
    with tenant_context(alpha.tenant):
        moved = Payout.objects.get(pk=waiting.pk)
        assert before <= moved.next_attempt_at <= timezone.now()
        assert (moved.status, moved.attempts) == (PayoutStatus.PENDING, 3)
        assert Payout.objects.get(pk=held.pk).status == PayoutStatus.HELD
        assert [e.detail for e in _audit("rewards.payout", waiting.pk)] == ["立即重试红包"]
        assert not _audit("rewards.payout", held.pk)


def test_held_points_claims_are_reviewed_in_the_claim_list(alpha: Brand) -> None:
    from rewards.models import RiskPolicy

    with tenant_context(alpha.tenant):
        running_campaign([PrizeSpec(name="酒币", kind="points", points=40, odds_ppm=1_000_000, quantity=9)])
        RiskPolicy.objects.create(member_claims_per_hour=1)
        someone = member("o-review")
        claims.claim(someone, ClaimContext(serial=1))
        held = claims.claim(someone, ClaimContext(serial=2)).claim
        rejected = claims.claim(someone, ClaimContext(serial=3)).claim
        assert held.status == rejected.status == ClaimStatus.HELD
    owner = alpha.client("owner")
    page = owner.get(f"{ADMIN}/claim/{held.pk}/change/").content.decode()
    assert "该会员一小时内已抽奖" in page  # the reasons, for the reviewer
    for action, claim in (("approve_claims", held), ("reject_claims", rejected)):
        answer = owner.post(f"{ADMIN}/claim/", {"action": action, "_selected_action": [str(claim.pk)]})
        assert answer.status_code == 302
    with tenant_context(alpha.tenant):
        assert Claim.objects.get(pk=held.pk).status == ClaimStatus.OK
        assert Claim.objects.get(pk=rejected.pk).status == ClaimStatus.REJECTED
        someone.refresh_from_db()
        assert someone.points_balance == 80
    service = alpha.client("customer_service")
    listing = service.get(f"{ADMIN}/claim/")
    assert "approve_claims" not in listing.content.decode()


def test_risk_rules_and_the_block_list_are_kept_in_the_console_and_audited(alpha: Brand) -> None:
    owner = alpha.client("owner")
    rules = {
        "member_claims_per_hour": "3",
        "device_claims_per_hour": "5",
        "ip_claims_per_hour": "20",
        "new_member_minutes": "30",
        "new_member_burst": "3",
        "hold_outside_dealer_area": "on",
    }
    assert owner.post(f"{ADMIN}/riskpolicy/add/", rules).status_code == 302
    assert owner.get(f"{ADMIN}/riskpolicy/add/").status_code == 403  # one set of rules per brand
    blocked = {"kind": "ip", "value": "6.6.6.6", "reason": "批量注册"}
    assert owner.post(f"{ADMIN}/blockeditem/add/", blocked).status_code == 302
    with tenant_context(alpha.tenant):
        from rewards.models import BlockedItem, RiskPolicy

        assert RiskPolicy.objects.get().member_claims_per_hour == 3
        assert BlockedItem.objects.get().created_by == "owner"
        assert AuditEntry.objects.filter(object_type__in=["rewards.riskpolicy", "rewards.blockeditem"]).count() == 2


def test_referral_rules_are_kept_and_referrals_listed_in_the_console(alpha: Brand) -> None:
    from rewards.models import Referral
    from rewards.services import referrals

    with tenant_context(alpha.tenant):
        inviter, invitee = member("o-inviter"), member("o-invitee")
        referrals.accept(inviter, invitee)
    owner = alpha.client("owner")
    rules = {
        "enabled": "on",
        "inviter_points": "80",
        "invitee_points": "40",
        "max_per_inviter": "5",
        "accept_days": "14",
    }
    assert owner.post(f"{ADMIN}/referralprogram/add/", rules).status_code == 302
    assert owner.get(f"{ADMIN}/referral/").status_code == 200
    assert owner.get(f"{ADMIN}/referral/add/").status_code == 403
    with tenant_context(alpha.tenant):
        assert referrals.program().inviter_points == 80
        assert Referral.objects.count() == 1
        assert AuditEntry.objects.filter(object_type="rewards.referralprogram").count() == 1
