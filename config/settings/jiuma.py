"""Product settings of Jiuma itself."""

from config.env import LOCAL_DIR, env

# Host names served by the public schema (ops API, platform pages, health); brand hosts are Domain rows.
PLATFORM_HOSTS = env.list("JIUMA_PLATFORM_HOSTS", default=["localhost", "127.0.0.1", "ops.localhost", "testserver"])
# A brand created without an explicit domain gets "<schema-slug>.<base domain>".
BRAND_BASE_DOMAIN = env.str("JIUMA_BRAND_BASE_DOMAIN", default="localhost")

# Host -> tenant lookups are cached in each process for this long; a suspension or a domain change
# made in another process takes effect within this time (at once in the process that made it).
TENANT_CACHE_SECONDS = env.float("TENANT_CACHE_SECONDS", default=5.0)
TENANT_CACHE_MAX_ENTRIES = env.int("TENANT_CACHE_MAX_ENTRIES", default=10_000)

# How a new brand's schema is built: "migrate" runs every tenant migration, "clone" copies the
# template tenant (a real, fully migrated tenant kept up to date by migrate_schemas).
TENANT_PROVISIONING_METHOD = env.str("TENANT_PROVISIONING_METHOD", default="migrate")
TENANT_TEMPLATE_SCHEMA = "tenant_template"
# A brand stuck in "provisioning" longer than this is retried by the sweeper.
TENANT_PROVISIONING_STALE_SECONDS = env.int("TENANT_PROVISIONING_STALE_SECONDS", default=300)

# Data exports made before a brand is deleted (and on request).
EXPORT_ROOT = env.path("JIUMA_EXPORT_ROOT", default=LOCAL_DIR / "exports")
# Deleting a brand needs a confirmation made at least this long after the export, and within a day.
BRAND_DELETION_CONFIRM_WINDOW_HOURS = env.int("BRAND_DELETION_CONFIRM_WINDOW_HOURS", default=24)

# Master keys wrapping the brands' code secrets (tenants/keys.py): "id:base64,id:base64", the first
# wraps. Or a KMS-backed ring class (dotted path). Development without either uses .local/master.key.
JIUMA_MASTER_KEYS = env.str("JIUMA_MASTER_KEYS", default="")
JIUMA_MASTER_KEY_RING = env.str("JIUMA_MASTER_KEY_RING", default="")
JIUMA_DEV_MASTER_KEY_FILE = env.path("JIUMA_DEV_MASTER_KEY_FILE", default=LOCAL_DIR / "master.key")

# Code verification keeps every brand's keys in process (codes/keyring.py): the list of brand
# numbers is re-read this often, and a key version not seen yet is looked up at most this often.
KEYRING_REFRESH_SECONDS = env.float("KEYRING_REFRESH_SECONDS", default=60.0)
KEYRING_RETRY_SECONDS = env.float("KEYRING_RETRY_SECONDS", default=10.0)

# Every scan URL starts with this (QR alphanumeric characters only: upper case, digits, " $%*+-./:").
# Its host is a platform host that routes any brand's code by the brand number the code carries.
CODE_URL_PREFIX = env.str("JIUMA_CODE_URL_PREFIX", default="HTTP://C.LOCALHOST:8000/C/")
# Further hosts that serve scan URLs the same way (e.g. an old short domain still on printed caps).
CODE_EXTRA_HOSTS = env.list("JIUMA_CODE_EXTRA_HOSTS", default=[])

# WeChat endpoints. Production talks to WeChat itself; the demo and the tests point these at the local
# simulator (platform/local/wechat_simulator.py), which speaks the same protocols on loopback.
WECHAT_OAUTH_BASE_URL = env.str("JIUMA_WECHAT_OAUTH_BASE_URL", default="https://open.weixin.qq.com/connect/")
WECHAT_API_BASE_URL = env.str("JIUMA_WECHAT_API_BASE_URL", default="https://api.weixin.qq.com/")
WECHAT_PAY_BASE_URL = env.str("JIUMA_WECHAT_PAY_BASE_URL", default="https://api.mch.weixin.qq.com")
WECHAT_TIMEOUT_SECONDS = env.float("JIUMA_WECHAT_TIMEOUT_SECONDS", default=5.0)
# The demo runs against the simulator: consumer pages then offer what only WeChat's client can do
# (confirming a transfer) through the simulator's control API. Never set in production.
WECHAT_SIMULATED = env.bool("JIUMA_WECHAT_SIMULATED", default=False)
# A consumer stays identified on a host (signed cookie) this long.
MEMBER_SESSION_DAYS = env.int("JIUMA_MEMBER_SESSION_DAYS", default=30)
# The version of the consumer privacy policy text (frontends' privacy page); a new version asks again.
PRIVACY_POLICY_VERSION = env.str("JIUMA_PRIVACY_POLICY_VERSION", default="2026-11")
# Where WeChat Pay sends a brand's notifications: {number} is the brand number, {domain} its primary
# domain. The default is one platform address for every brand (routed by BRAND_NUMBER_PATHS), so
# notifications arrive whatever state a brand's own domains and certificates are in.
WECHAT_PAY_NOTIFY_URL = env.str(
    "JIUMA_WECHAT_PAY_NOTIFY_URL", default=f"https://{PLATFORM_HOSTS[0]}/pay/notify/{{number}}/"
)
# Paths on platform hosts served by the brand whose number they carry (tenants.middleware).
BRAND_NUMBER_PATHS = [r"^/pay/notify/(?P<number>\d{1,5})/$"]
