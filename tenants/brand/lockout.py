"""What a locked-out staff member sees after too many failed logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = _("登录失败次数过多，账号已临时锁定，请 %(minutes)d 分钟后再试。") % {"minutes": minutes}
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "login_locked", "message": message}, status=429)
    return render(request, "frontends/notice.html", {"title": _("账号已锁定"), "message": message}, status=429)
