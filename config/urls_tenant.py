"""URLs of a brand host (the brand's schema): consumer pages, the brand console admin, the brand API."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from frontends import claim, consumer, terminal, wechat_pay
from frontends import views as pages
from tenants.brand.admin import site as brand_admin

urlpatterns = [
    path("", pages.brand_home, name="brand-home"),
    # Scan URLs: <CODE_URL_PREFIX><code> (upper case in QR codes), on the code host or a brand host.
    path("C/<str:code>", pages.scan, name="scan"),
    path("c/<str:code>", pages.scan, name="scan-lower"),
    # The position the scan page's browser shares (with the consumer's permission), once per scan.
    path("C/<str:code>/place", pages.scan_place, name="scan-place"),
    path("c/<str:code>/place", pages.scan_place, name="scan-place-lower"),
    # Consumer identity (WeChat web OAuth) and the member centre; the code-path forms serve the
    # short code host, which routes /C/<code>/... to the code's brand.
    path("wx/login/", consumer.wx_login, name="wx-login"),
    path("wx/callback/", consumer.wx_callback, name="wx-callback"),
    path("C/<str:code>/wx/login", consumer.wx_login, name="scan-wx-login"),
    path("C/<str:code>/wx/callback", consumer.wx_callback, name="scan-wx-callback"),
    path("C/<str:code>/consent", claim.consent, name="scan-consent"),
    path("C/<str:code>/rules", claim.rules, name="scan-rules"),
    # Campaign rules, public before a campaign starts (promotion rules), and its draws after it ends.
    path("r/<int:campaign_id>/", claim.campaign_rules, name="campaign-rules"),
    path("r/<int:campaign_id>/draws/", claim.campaign_draws, name="campaign-draws"),
    path("m/me/", consumer.member_home, name="member-home"),
    path("m/me/export/", consumer.member_export, name="member-export"),
    path("m/me/erase/", consumer.member_erase, name="member-erase"),
    path("m/me/payouts/<int:payout_id>/simulate-confirm/", consumer.simulate_confirm, name="payout-simulate-confirm"),
    path("m/invite/", consumer.invite, name="invite"),
    path("m/invite/<str:token>/", consumer.invite_accept, name="invite-accept"),
    path("m/privacy/", consumer.privacy, name="privacy"),
    path("m/privacy/consent/", consumer.privacy_consent, name="privacy-consent"),
    # WeChat Pay's notifications (signed and encrypted by WeChat; checked in rewards.services.payouts).
    path("pay/notify/", wechat_pay.notify, name="wechat-pay-notify"),
    path("pay/notify/<int:number>/", wechat_pay.notify, name="wechat-pay-notify-by-number"),
    # Terminal H5: outbound and receiving by case code (phones and handheld scanners).
    path("t/login/", terminal.terminal_login, name="terminal-login"),
    path("t/", terminal.terminal, name="terminal"),
    path("t/scan/", terminal.terminal_scan, name="terminal-scan"),
    path("t/redeem/", terminal.terminal_redeem, name="terminal-redeem"),
    # Card collecting (集卡) and store rewards (开瓶奖励): their own URL modules.
    path("", include("frontends.urls_cards")),
    path("", include("frontends.urls_store")),
    # Distribution (分销): the public rules, share links and the affiliate centre.
    path("", include("frontends.urls_distribution")),
    # The shop: catalog, cart, checkout, orders and payment, addresses, the points mall.
    path("", include("frontends.urls_shop")),
    path("admin/", brand_admin.urls),
    path("api/v1/", include("tenants.brand.api.urls")),
    path("api/v1/codes/", include("codes.api.urls")),
    path("api/v1/channel/", include("commerce.api.urls")),
    path("api/v1/members/", include("commerce.api.member_urls")),
    path("api/v1/rewards/", include("rewards.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="config.urls_tenant"), name="api-schema"),
]

handler400 = "tenants.api.errors.bad_request"
handler403 = "tenants.api.errors.permission_denied"
handler404 = "tenants.api.errors.api_not_found"
handler500 = "tenants.api.errors.server_error"
