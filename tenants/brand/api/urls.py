from django.urls import path

from tenants.brand.api import key_views, views

app_name = "brand-api"

urlpatterns = [
    path("site/", views.SiteView.as_view(), name="site"),
    path("auth/csrf/", views.CsrfView.as_view(), name="csrf"),
    path("auth/login/", views.LoginView.as_view(), name="login"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("profile/", views.ProfileView.as_view(), name="profile"),
    path("staff/", views.StaffListView.as_view(), name="staff"),
    path("staff/<int:user_id>/role/", views.StaffRoleView.as_view(), name="staff-role"),
    path("staff/<int:user_id>/deactivate/", views.StaffDeactivateView.as_view(), name="staff-deactivate"),
    path("audit/", views.AuditListView.as_view(), name="audit"),
    path("api-keys/", key_views.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", key_views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
