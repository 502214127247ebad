from django.urls import path

from rewards.api import views

app_name = "rewards-api"

urlpatterns = [
    path("campaigns/", views.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/<int:campaign_id>/", views.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<int:campaign_id>/publish/", views.CampaignPublishView.as_view(), name="campaign-publish"),
    path("campaigns/<int:campaign_id>/cancel/", views.CampaignCancelView.as_view(), name="campaign-cancel"),
    path("campaigns/<int:campaign_id>/end/", views.CampaignEndView.as_view(), name="campaign-end"),
    path("claims/", views.ClaimListView.as_view(), name="claims"),
    path("claims/<int:claim_id>/", views.ClaimDetailView.as_view(), name="claim"),
    path("claims/<int:claim_id>/review/", views.ClaimReviewView.as_view(), name="claim-review"),
    path("payouts/", views.PayoutListView.as_view(), name="payouts"),
    path("payouts/<int:payout_id>/", views.PayoutDetailView.as_view(), name="payout"),
    path("payouts/<int:payout_id>/approve/", views.PayoutApproveView.as_view(), name="payout-approve"),
    path("payouts/<int:payout_id>/reject/", views.PayoutRejectView.as_view(), name="payout-reject"),
    path("payouts/<int:payout_id>/retry/", views.PayoutRetryView.as_view(), name="payout-retry"),
]
