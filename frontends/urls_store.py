"""Store rewards (开瓶奖励, BC 联动): store and clerk QR codes at the till, the clerk's cap scan, the
store's earnings statement and withdrawals in the terminal H5 (frontends.store)."""

from django.urls import URLPattern, path

from frontends import store

urlpatterns: list[URLPattern] = [
    # A consumer scans a store's or a clerk's QR at the till: their next cap scan is tied to the store.
    # On the short code host (where the caps are scanned) the path names the brand: /s/<number>/<token>/.
    path("s/<int:number>/<str:token>/", store.store_qr, name="store-qr-numbered"),
    path("s/<str:token>/", store.store_qr, name="store-qr"),
    # Terminal H5 (store staff): 服务员扫码, 我的收益, 申请提现, the QR images to show.
    path("t/clerk-scan/", store.clerk_scan, name="terminal-clerk-scan"),
    path("t/earnings/", store.earnings, name="terminal-earnings"),
    path("t/withdraw/", store.withdraw, name="terminal-withdraw"),
    path("t/qr/me.png", store.my_qr, name="terminal-my-qr"),
    path("t/qr/store.png", store.store_qr_image, name="terminal-store-qr"),
]
