"""One error shape for every API: HTTP 4xx with {"code": machine code, "message": Chinese text}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.errors import JiumaError


def _messages() -> list[tuple[type[Exception], str, str]]:
    return [
        (exceptions.NotAuthenticated, "not_authenticated", _("请先登录。")),
        (exceptions.AuthenticationFailed, "authentication_failed", _("身份验证失败，请重新登录。")),
        (exceptions.PermissionDenied, "permission_denied", _("没有权限执行此操作。")),
        (exceptions.NotFound, "not_found", _("请求的内容不存在。")),
        (exceptions.MethodNotAllowed, "method_not_allowed", _("不支持该请求方式。")),
        (exceptions.NotAcceptable, "not_acceptable", _("无法提供所请求的格式。")),
        (exceptions.UnsupportedMediaType, "unsupported_media_type", _("不支持的内容类型。")),
        (exceptions.ParseError, "malformed_request", _("请求内容格式错误。")),
        (exceptions.Throttled, "throttled", _("请求过于频繁，请稍后再试。")),
    ]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, JiumaError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.fields:
            body["fields"] = exc.fields
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid_input",
            "message": _("提交的内容有误，请检查后重试。"),
            "fields": response.data,
        }
        return response
    for kind, code, message in _messages():
        if isinstance(exc, kind):
            body = {"code": code, "message": message}
            wait = getattr(exc, "wait", None)
            if wait:
                body["retry_after_s"] = int(wait)
            response.data = body
            return response
    response.data = {"code": "error", "message": _("请求无法完成。")}
    return response


_API_PREFIXES = ("/api/", "/ops/api/")


def error_response(request: HttpRequest, status: int, code: str, message: str, *, title: str = "") -> HttpResponse:
    """A refusal outside DRF views: the API's JSON shape under /api/, a Chinese notice page elsewhere.

    Rendered without the request's context processors, so it works even when what failed is the
    database, the session or the user.
    """
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse({"code": code, "message": message}, status=status)
    page = render_to_string("frontends/notice.html", {"title": title or message, "message": message})
    return HttpResponse(page, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django-level 400 (an unknown Host header, a suspicious request)."""
    return error_response(request, 400, "bad_request", _("请求无效。"), title=_("请求无效"))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django-level 403 (an admin page the staff member's role does not allow)."""
    return error_response(request, 403, "permission_denied", _("没有权限执行此操作。"), title=_("没有权限"))


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django-level 404: JSON under /api/, a Chinese page elsewhere."""
    return error_response(request, 404, "not_found", _("请求的内容不存在。"), title=_("页面不存在"))


def server_error(request: HttpRequest) -> HttpResponse:
    """Django-level 500: no traceback, no detail, in Chinese."""
    return error_response(request, 500, "server_error", _("服务器开小差了，请稍后再试。"), title=_("服务暂时不可用"))
