"""Celery tasks of rewards/: thin wrappers over services, run in the brand's schema they were sent from."""

from __future__ import annotations

from celery import shared_task

from rewards.services import campaigns, cards, payouts


@shared_task(name="rewards.pay", acks_late=True, max_retries=0)
def pay(payout_id: int) -> str | None:
    """Send one payout (a claim enqueues it after commit; the sweeper re-sends any left due)."""
    payout = payouts.pay(payout_id)
    return payout.status if payout is not None else None


@shared_task(name="rewards.sweep_payouts")
def sweep_payouts() -> int:
    """Every minute in every brand: payouts due (new ones the broker lost, retries whose time came)."""
    sent = 0
    for payout_id in payouts.due():
        sent += payouts.pay(payout_id) is not None
    return sent


@shared_task(name="rewards.reconcile_payouts")
def reconcile_payouts() -> int:
    """Every ten minutes in every brand: ask WeChat about submitted payouts not yet final."""
    return payouts.reconcile()


@shared_task(name="rewards.end_campaigns")
def end_campaigns() -> list[int]:
    """Every five minutes in every brand: campaigns whose time is up end and reveal their seeds."""
    return campaigns.end_due()


@shared_task(name="rewards.expire_card_gifts")
def expire_card_gifts() -> int:
    """Every hour in every brand: card gifts nobody accepted in time go back to their senders."""
    return cards.expire_due()


@shared_task(name="rewards.sweep_commission_withdrawals")
def sweep_commission_withdrawals() -> int:
    """Every five minutes in every brand: approved commission withdrawals get their payout, and a
    payout's outcome the hook missed reaches its withdrawal."""
    from rewards.services import commission_payouts

    return commission_payouts.sweep()
