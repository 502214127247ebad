"""Consumer pages of the shop (商城): browsing, cart, checkout, orders and paying, addresses, the
points mall (frontends.shop)."""

from django.urls import URLPattern, path

from frontends import shop

urlpatterns: list[URLPattern] = [
    path("shop/", shop.shop_home, name="shop"),
    path("shop/p/<int:product_id>/", shop.product_page, name="shop-product"),
    path("shop/mall/", shop.mall, name="shop-mall"),
    path("shop/cart/", shop.cart, name="shop-cart"),
    path("shop/cart/add/", shop.cart_add, name="shop-cart-add"),
    path("shop/cart/quantity/", shop.cart_quantity, name="shop-cart-quantity"),
    path("shop/cart/select/", shop.cart_select, name="shop-cart-select"),
    path("shop/cart/remove/", shop.cart_remove, name="shop-cart-remove"),
    path("shop/checkout/", shop.checkout, name="shop-checkout"),
    path("shop/orders/", shop.order_list, name="shop-orders"),
    path("shop/orders/<str:number>/", shop.order_page, name="shop-order"),
    path("shop/orders/<str:number>/pay/", shop.order_pay, name="shop-order-pay"),
    path("shop/orders/<str:number>/simulate-pay/", shop.order_simulate_pay, name="shop-order-simulate-pay"),
    path("shop/orders/<str:number>/cancel/", shop.order_cancel, name="shop-order-cancel"),
    path("shop/orders/<str:number>/receive/", shop.order_receive, name="shop-order-receive"),
    path("shop/addresses/", shop.addresses, name="shop-addresses"),
    path("shop/addresses/<int:address_id>/default/", shop.address_default, name="shop-address-default"),
    path("shop/addresses/<int:address_id>/delete/", shop.address_delete, name="shop-address-delete"),
]
