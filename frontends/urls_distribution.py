"""Distribution (分销): the public rules, an affiliate's share link, and the member's affiliate centre
(frontends.distribution)."""

from django.urls import URLPattern, path

from frontends import distribution

urlpatterns: list[URLPattern] = [
    path("d/rules/", distribution.rules, name="distribution-rules"),
    path("d/s/<str:token>/", distribution.share, name="distribution-share"),
    path("d/me/", distribution.centre, name="distribution-centre"),
    path("d/me/apply/", distribution.apply, name="distribution-apply"),
    path("d/me/withdraw/", distribution.withdraw, name="distribution-withdraw"),
    path(
        "d/me/withdrawals/<int:withdrawal_id>/cancel/",
        distribution.cancel_withdrawal,
        name="distribution-withdrawal-cancel",
    ),
]
