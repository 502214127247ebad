"""WeChat Pay's notifications to a brand (POST /pay/notify/ on the brand's primary domain).

Authenticity is the notification's RSA signature and AES-GCM encryption, checked by the brand's
WeChat Pay client; there is no session, so no CSRF token. A notification we cannot verify is
answered 401 (WeChat resends it); a verified one is stored in the inbox and answered 204 at once,
also when it repeats one already applied.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rewards.services import payouts

logger = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024


@csrf_exempt
@require_POST
def notify(request: HttpRequest, number: int | None = None) -> HttpResponse:
    """`number`: the brand number of the platform address form (routed to the brand already)."""
    if number is not None and number != getattr(request.tenant, "number", None):  # type: ignore[attr-defined]
        return JsonResponse({"code": "FAIL", "message": "unknown brand"}, status=404)
    body = request.body
    if len(body) > _MAX_BODY:
        return JsonResponse({"code": "FAIL", "message": "body too large"}, status=413)
    headers = {key: str(value) for key, value in request.META.items() if key.startswith("HTTP_WECHATPAY_")}
    try:
        accepted = payouts.handle_notification(headers, body)
    except Exception:  # never let WeChat see a 500 without a retryable answer; log it for us
        logger.exception("applying a WeChat Pay notification failed")
        return JsonResponse({"code": "FAIL", "message": "try again"}, status=503)
    if not accepted:
        return JsonResponse({"code": "FAIL", "message": "signature verification failed"}, status=401)
    return HttpResponse(status=204)
