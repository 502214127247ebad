from django.urls import path

from commerce.api import member_views as views

app_name = "members-api"

urlpatterns = [
    path("", views.MemberListView.as_view(), name="members"),
    path("<int:member_id>/", views.MemberDetailView.as_view(), name="member"),
    path("<int:member_id>/points/", views.MemberPointsView.as_view(), name="member-points"),
    path("<int:member_id>/points/adjust/", views.MemberPointsAdjustView.as_view(), name="member-points-adjust"),
]
