from django.urls import path

from commerce.api import views

app_name = "channel-api"

urlpatterns = [
    path("dealers/", views.DealerListView.as_view(), name="dealers"),
    path("dealers/<int:dealer_id>/", views.DealerDetailView.as_view(), name="dealer"),
    path("dealers/<int:dealer_id>/areas/", views.DealerAreasView.as_view(), name="dealer-areas"),
    path("dealers/<int:dealer_id>/suspend/", views.DealerSuspendView.as_view(), name="dealer-suspend"),
    path("dealers/<int:dealer_id>/resume/", views.DealerResumeView.as_view(), name="dealer-resume"),
    path("stores/", views.StoreListView.as_view(), name="stores"),
    path("stores/<int:store_id>/", views.StoreDetailView.as_view(), name="store"),
    path("stores/<int:store_id>/suspend/", views.StoreSuspendView.as_view(), name="store-suspend"),
    path("stores/<int:store_id>/resume/", views.StoreResumeView.as_view(), name="store-resume"),
    path("stores/<int:store_id>/rotate-qr/", views.StoreRotateQrView.as_view(), name="store-rotate-qr"),
    path("staff/", views.ChannelStaffListView.as_view(), name="staff"),
    path("staff/<int:staff_id>/", views.ChannelStaffDetailView.as_view(), name="staff-detail"),
    path("staff/<int:staff_id>/deactivate/", views.ChannelStaffDeactivateView.as_view(), name="staff-deactivate"),
]
