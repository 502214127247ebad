"""Celery tasks of commerce/: thin wrappers over services, run in the brand's schema they were sent from."""

from __future__ import annotations

from celery import shared_task

from commerce.services import points


@shared_task(name="commerce.expire_points")
def expire_points() -> int:
    """Daily in every ready brand (beat): points whose time has come lapse (returns how many)."""
    return points.expire_due()


# -- payments, refunds, after-sales (commerce.services.payments / refunds / aftersales) ----------


@shared_task(name="commerce.payment_pending")
def payment_pending() -> dict[str, int]:
    """Every minute (beat): ask WeChat about pending payments whose notification is overdue."""
    from commerce.services import payments

    return payments.query_pending()


@shared_task(name="commerce.submit_refund", acks_late=True, max_retries=0)
def submit_refund(refund_id: int) -> str | None:
    """One refund, sent after its booking commits (same refund_no every time)."""
    from commerce.services import refunds

    refund = refunds.submit(refund_id)
    return None if refund is None else str(refund.status)


@shared_task(name="commerce.refund_due")
def refund_due() -> int:
    """Every minute (beat): send or ask about refunds whose next attempt is due."""
    from commerce.services import refunds

    return refunds.sweep()


@shared_task(name="commerce.after_sale_due")
def after_sale_due() -> int:
    """Every 5 minutes (beat): after-sales past due_at (auto approve refund-only, close unsent returns)."""
    from commerce.services import aftersales

    return aftersales.sweep_due()


# --- orders and coupons: the deadlines (an eta task per order, and a periodic sweep over the partial
# index; both call the same idempotent service) ---------------------------------------------------


@shared_task(name="commerce.order_pay_due")
def order_pay_due() -> int:
    """Every minute: unpaid orders past pay_by are cancelled (reason timeout)."""
    from commerce.services import orders

    return orders.sweep_pay_due()


@shared_task(name="commerce.order_pay_due_one")
def order_pay_due_one(order_id: int) -> bool:
    from commerce.services import orders

    return orders.cancel_due(order_id)


@shared_task(name="commerce.order_receive_due")
def order_receive_due() -> int:
    """Shipped orders past auto_receive_at are received."""
    from commerce.services import orders

    return orders.sweep_receive_due()


@shared_task(name="commerce.order_receive_due_one")
def order_receive_due_one(order_id: int) -> bool:
    from commerce.services import orders

    return orders.receive_due(order_id)


@shared_task(name="commerce.order_after_sales_due")
def order_after_sales_due() -> int:
    """Received orders past after_sales_until without an open after-sale complete (reward credited)."""
    from commerce.services import orders

    return orders.sweep_after_sales_due()


@shared_task(name="commerce.order_after_sales_due_one")
def order_after_sales_due_one(order_id: int) -> bool:
    from commerce.services import orders

    return orders.complete_due(order_id)


@shared_task(name="commerce.member_coupon_expiring")
def member_coupon_expiring() -> int:
    """Available coupons past valid_until expire."""
    from commerce.services import coupons

    return coupons.expire_due()


# --- group buy and bargaining: the deadlines (eta task per team / session and a periodic sweep) --


@shared_task(name="commerce.group_buy_team_expiry")
def group_buy_team_expiry() -> int:
    """Every minute: open teams past expires_at fail (paid members refunded, unpaid orders cancelled)."""
    from commerce.services import group_buy

    return group_buy.sweep_expired()


@shared_task(name="commerce.group_buy_team_expiry_one")
def group_buy_team_expiry_one(team_id: int) -> bool:
    from commerce.services import group_buy

    return group_buy.fail_team(team_id)


@shared_task(name="commerce.bargain_session_expiry")
def bargain_session_expiry() -> int:
    """Every 5 minutes: active bargain sessions past expires_at expire."""
    from commerce.services import bargain

    return bargain.sweep_expired()


@shared_task(name="commerce.bargain_session_expiry_one")
def bargain_session_expiry_one(session_id: int) -> bool:
    from commerce.services import bargain

    return bargain.expire(session_id)
