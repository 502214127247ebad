"""Consumer pages of card collecting (集卡): the member's cards, gifting, exchanging a full set."""

from django.urls import URLPattern, path

from frontends import cards

urlpatterns: list[URLPattern] = [
    path("m/cards/", cards.cards_home, name="cards"),
    path("m/cards/gift/", cards.gift, name="card-gift-make"),
    path("m/cards/exchange/", cards.exchange, name="card-exchange"),
    path("m/cards/g/<str:token>/", cards.gift_page, name="card-gift"),
    path("m/cards/g/<str:token>/cancel/", cards.gift_cancel, name="card-gift-cancel"),
]
