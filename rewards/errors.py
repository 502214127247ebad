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
    # Store rewards (开瓶奖励, 服务员扫码) and store withdrawals.
    STORE_REWARD_OFF = "store_reward_off"
    NOT_STORE_STAFF = "not_store_staff"
    CODE_BLOCKED = "code_blocked"  # void, frozen or blacklisted
    ALREADY_CLERK_SCANNED = "bottle_already_clerk_scanned"
    CLERK_DAILY_CAP = "clerk_daily_cap_reached"
    INVALID_AMOUNT = "invalid_withdrawal_amount"
    BELOW_MINIMUM = "withdrawal_below_minimum"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    WITHDRAWAL_OPEN = "withdrawal_in_progress"
    WITHDRAWAL_WRONG_STATE = "withdrawal_wrong_state"
    WITHDRAWAL_NOTE_REQUIRED = "withdrawal_note_required"
    NOT_ACCOUNT_HOLDER = "not_account_holder"
    # The brand console API (rewards/api).
    CLAIM_NOT_FOUND = "claim_not_found"
    PAYOUT_NOT_FOUND = "payout_not_found"
    UNKNOWN_TARGET = "unknown_campaign_target"  # a batch, SKU or dealer id the brand does not have
    PAYOUT_NOT_WAITING = "payout_not_waiting_for_retry"
    # Card collecting (集卡)
    CARD_SET_NOT_FOUND = "card_set_not_found"
    CARD_SET_INACTIVE = "card_set_inactive"
    CARD_SET_EMPTY = "card_set_has_no_cards"
    CARD_NOT_FOUND = "card_not_found"
    CARD_NOT_HELD = "card_not_held"
    CARD_EXCHANGE_CLOSED = "card_exchange_closed"
    CARD_SET_INCOMPLETE = "card_set_incomplete"
    CARD_EXCHANGE_LIMIT = "card_exchange_limit_reached"
    CARD_SET_SOLD_OUT = "card_set_sold_out"
    CARD_EXCHANGE_BUSY = "card_exchange_in_progress"
    CARD_GIFT_DAILY_LIMIT = "card_gift_daily_limit"
    CARD_RECEIVE_DAILY_LIMIT = "card_receive_daily_limit"
    CARD_GIFTS_OFF = "card_gifts_disabled"
    CARD_GIFT_NOT_FOUND = "card_gift_not_found"
    CARD_GIFT_OWN = "card_gift_own"
    CARD_GIFT_TAKEN = "card_gift_taken"
    CARD_GIFT_CANCELLED = "card_gift_cancelled"
    CARD_GIFT_EXPIRED = "card_gift_expired"
