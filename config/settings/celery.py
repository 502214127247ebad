"""Celery: every task runs in the schema it was sent from (tenant-schemas-celery's CeleryApp)."""

from config.env import env

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="jiuma")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_ENABLE_UTC = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_TENANT_CACHE_SECONDS = 30
# Beat sends tenant jobs only to brands whose schema is ready (see tenants.beat).
CELERY_BEAT_SCHEDULER = "tenants.beat:ReadyTenantScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "tenants.sweep_stuck_provisioning": {
        "task": "tenants.sweep_stuck_provisioning",
        "schedule": 60.0,
        "tenant_schemas": ["public"],
    },
    # Tenant jobs (no tenant_schemas): sent to every ready brand.
    "codes.ensure_scan_partitions": {"task": "codes.ensure_scan_partitions", "schedule": 24 * 3600.0},
    "commerce.expire_points": {"task": "commerce.expire_points", "schedule": 24 * 3600.0},
    "commerce.order_pay_due": {"task": "commerce.order_pay_due", "schedule": 60.0},
    "commerce.order_receive_due": {"task": "commerce.order_receive_due", "schedule": 600.0},
    "commerce.order_after_sales_due": {"task": "commerce.order_after_sales_due", "schedule": 600.0},
    "commerce.member_coupon_expiring": {"task": "commerce.member_coupon_expiring", "schedule": 3600.0},
    "rewards.sweep_payouts": {"task": "rewards.sweep_payouts", "schedule": 60.0},
    "rewards.reconcile_payouts": {"task": "rewards.reconcile_payouts", "schedule": 600.0},
    "rewards.end_campaigns": {"task": "rewards.end_campaigns", "schedule": 300.0},
    "rewards.expire_card_gifts": {"task": "rewards.expire_card_gifts", "schedule": 3600.0},
    "rewards.sweep_commission_withdrawals": {"task": "rewards.sweep_commission_withdrawals", "schedule": 300.0},
}
# Payments, refunds, after-sales (commerce.tasks).
CELERY_BEAT_SCHEDULE.update(
    {
        "commerce.payment_pending": {"task": "commerce.payment_pending", "schedule": 60.0},
        "commerce.refund_due": {"task": "commerce.refund_due", "schedule": 60.0},
        "commerce.after_sale_due": {"task": "commerce.after_sale_due", "schedule": 300.0},
    }
)
# Group buy and bargaining deadlines (commerce.tasks).
CELERY_BEAT_SCHEDULE.update(
    {
        "commerce.group_buy_team_expiry": {"task": "commerce.group_buy_team_expiry", "schedule": 60.0},
        "commerce.bargain_session_expiry": {"task": "commerce.bargain_session_expiry", "schedule": 300.0},
    }
)
