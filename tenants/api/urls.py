from django.urls import path

from tenants.api import views

app_name = "ops"

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("plans/", views.PlanListView.as_view(), name="plans"),
    path("brands/", views.BrandListView.as_view(), name="brands"),
    path("brands/<slug:code>/", views.BrandDetailView.as_view(), name="brand"),
    path("brands/<slug:code>/suspend/", views.BrandSuspendView.as_view(), name="brand-suspend"),
    path("brands/<slug:code>/resume/", views.BrandResumeView.as_view(), name="brand-resume"),
    path("brands/<slug:code>/retry-provisioning/", views.BrandRetryProvisioningView.as_view(), name="brand-retry"),
    path("brands/<slug:code>/domains/", views.BrandDomainView.as_view(), name="brand-domains"),
    path("brands/<slug:code>/exports/", views.BrandExportView.as_view(), name="brand-exports"),
    path(
        "brands/<slug:code>/operations/<int:operation_id>/", views.BrandOperationView.as_view(), name="brand-operation"
    ),
    path("brands/<slug:code>/code-keys/", views.BrandCodeKeysView.as_view(), name="brand-code-keys"),
    path(
        "brands/<slug:code>/code-keys/<int:version>/retire/",
        views.BrandCodeKeyRetireView.as_view(),
        name="brand-code-key-retire",
    ),
    path("brands/<slug:code>/deletion/", views.BrandDeletionView.as_view(), name="brand-deletion"),
    path(
        "brands/<slug:code>/deletion/confirm/", views.BrandDeletionConfirmView.as_view(), name="brand-deletion-confirm"
    ),
]
