from django.urls import path

from codes.api import views

app_name = "codes-api"

urlpatterns = [
    path("batches/", views.BatchListView.as_view(), name="batches"),
    path("batches/<int:batch_id>/", views.BatchDetailView.as_view(), name="batch"),
    path("batches/<int:batch_id>/password/", views.BatchPasswordView.as_view(), name="batch-password"),
    path("batches/<int:batch_id>/download/", views.BatchDownloadView.as_view(), name="batch-download"),
    path("batches/<int:batch_id>/bind/", views.BatchBindView.as_view(), name="batch-bind"),
    path("batches/<int:batch_id>/status/", views.BatchStatusView.as_view(), name="batch-status"),
    path("batches/<int:batch_id>/qr/", views.BatchQrView.as_view(), name="batch-qr"),
    path("batches/<int:batch_id>/proof/", views.BatchProofView.as_view(), name="batch-proof"),
    path("status/", views.RangeStatusView.as_view(), name="status"),
    path("status/code/", views.CodeStatusView.as_view(), name="code-status"),
    path("associations/", views.AssociationUploadView.as_view(), name="associations"),
    path("associations/<int:upload_id>/", views.AssociationDetailView.as_view(), name="association"),
    path("movements/", views.MovementView.as_view(), name="movements"),
]
