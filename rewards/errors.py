"""Machine-readable codes of the refusals in rewards/ (messages are Simplified Chinese)."""

from __future__ import annotations

from enum import StrEnum


class RewardErrorCode(StrEnum):
    INVALID_CAMPAIGN = "invalid_campaign"
    INVALID_PRIZE = "invalid_prize"
    PRIZE_TOO_LARGE = "prize_over_legal_cap"
    ODDS_OVER_ONE = "odds_over_100_percent"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    WRONG_STATE = "campaign_wrong_state"
    TOO_LATE_TO_PUBLISH = "campaign_must_be_published_before_start"
    NO_CAMPAIGN = "no_running_campaign"
    NOT_INNER_CODE = "not_an_inner_code"
    NOT_GENUINE = "code_not_genuine"
    NOT_ACTIVE = "code_not_active"
    ALREADY_CLAIMED = "code_already_claimed"
    CAP_REACHED = "member_cap_reached"
    NOT_IDENTIFIED = "member_not_identified"
