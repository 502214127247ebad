"""URLs of the platform hosts (public schema): the ops API and platform pages."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from frontends import views as pages

urlpatterns = [
    path("", pages.platform_home, name="platform-home"),
    path("ops/api/v1/", include("tenants.api.urls")),
    path(
        "ops/api/schema/",
        SpectacularAPIView.as_view(urlconf="config.urls_public", authentication_classes=[], permission_classes=[]),
        name="ops-schema",
    ),
]

handler400 = "tenants.api.errors.bad_request"
handler403 = "tenants.api.errors.permission_denied"
handler404 = "tenants.api.errors.api_not_found"
handler500 = "tenants.api.errors.server_error"
