"""Invariant 1: a brand never sees, changes or infers another brand's data.

Every URL of a brand host (walked from the URLconf, admin included) is requested on beta's host
with credentials that are valid somewhere else: alpha's owner's session and CSRF cookies, the
ops team's API token, the ops team's password. None of them may get past beta's front door,
while beta's own owner does get in (checked per URL, so a refusal is never an accident of a
broken URL). The same is done on the platform host with alpha's cookies. Then: cookies and
sessions, cache keys, uploaded files, and what a 404 gives away.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django_tenants.utils import schema_context
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from commerce.models import ChannelStaff, Dealer, Store
from commerce.services import channel
from tenants.brand import services as staff_services
from tenants.brand.models import AuditEntry, BrandProfile, User
from tenants.models import Tenant, TenantStatus
from tests.conftest import OPS_TOKEN, OWNER_PASSWORD, STAFF_PASSWORD, Brand
from tests.tenancy.conftest import client_with_cookies, leaked, signed_in_cookies

TENANT_URLCONF = "config.urls_tenant"
PUBLIC_URLCONF = "config.urls_public"
WRITE_METHODS = ("post", "put", "patch", "delete")
# The DRF codes of "you are nobody here" and "you may not".
REFUSAL_CODES = {"not_authenticated", "authentication_failed", "permission_denied"}
# A walk that finds fewer URLs than this is broken, and would let the tests pass on nothing.
MIN_TENANT_URLS = 10


# --- walking a URLconf -----------------------------------------------------------------------


@dataclass(frozen=True)
class WalkedUrl:
    """One concrete URL pattern: a path template with {param} holes and how to call it."""

    template: str
    name: str | None
    callback: Any
    params: tuple[str, ...]
    methods: tuple[str, ...]
    kind: str  # "admin", "api", "page"
    public: bool
    model_label: str | None = None  # the admin model whose object ids fill the template
    regex_samples: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def fill(self, values: dict[str, str]) -> str:
        missing = set(self.params) - values.keys()
        assert not missing, f"no sample value for {missing} in {self.template}"
        return self.template.format(**{name: values[name] for name in self.params})


def _route_template(route: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def hole(match: re.Match[str]) -> str:
        names.append(match["name"])
        return "{" + match["name"] + "}"

    return re.sub(r"<(?:[^>:]+:)?(?P<name>[^>]+)>", hole, route), names


def _regex_template(regex: str, samples: dict[str, str]) -> tuple[str, list[str]]:
    """A path template from a simple regex: anchors dropped, named groups become holes.

    A group that is an alternation of literals (the admin's app_label) records its first
    alternative as the sample to use.
    """
    names: list[str] = []

    def hole(match: re.Match[str]) -> str:
        name, body = match["name"], match["body"]
        names.append(name)
        if re.fullmatch(r"[\w|]+", body):
            samples[name] = body.split("|")[0]
        return "{" + name + "}"

    template = re.sub(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)", hole, regex)
    template = template.replace("^", "").replace("$", "")
    assert not re.search(r"[()\[\]*+?\\]", template), f"regex too complex to walk: {regex}"
    return template, names


def _methods_of(callback: Any, kind: str) -> tuple[str, ...]:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None and issubclass(view_class, APIView):
        writes = tuple(m.upper() for m in WRITE_METHODS if hasattr(view_class, m))
        return ("GET", *writes)
    if kind == "admin":
        return ("GET", "POST")  # every admin view takes its form posts on the same URL
    return ("GET",)


def _is_public(callback: Any, kind: str, name: str | None) -> bool:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None and issubclass(view_class, APIView):
        return any(issubclass(perm, AllowAny) for perm in view_class.permission_classes)
    if kind == "admin":
        return name == "login"
    return True  # plain pages are for consumers


def _kind_of(path: str) -> str:
    if path.startswith("admin/"):
        return "admin"
    if path.startswith(("api/", "ops/api/")):
        return "api"
    return "page"


def walk_urlconf(urlconf: str) -> list[WalkedUrl]:
    """Every leaf pattern of `urlconf`, includes followed, with its full path template."""
    walked: list[WalkedUrl] = []

    def visit(patterns: list[Any], prefix: str, params: list[str], samples: dict[str, str]) -> None:
        for entry in patterns:
            samples_here = dict(samples)
            if isinstance(entry.pattern, RoutePattern):
                piece, names = _route_template(str(entry.pattern))
            elif isinstance(entry.pattern, RegexPattern):
                piece, names = _regex_template(entry.pattern.regex.pattern, samples_here)
            else:
                raise AssertionError(f"unknown pattern type {entry.pattern!r}")
            path = prefix + piece
            if isinstance(entry, URLResolver):
                visit(entry.url_patterns, path, params + names, samples_here)
                continue
            assert isinstance(entry, URLPattern)
            kind = _kind_of(path)
            model_admin = getattr(entry.callback, "model_admin", None)
            walked.append(
                WalkedUrl(
                    template="/" + path,
                    name=entry.name,
                    callback=entry.callback,
                    params=tuple(params + names),
                    methods=_methods_of(entry.callback, kind),
                    kind=kind,
                    public=_is_public(entry.callback, kind, entry.name),
                    model_label=model_admin.model._meta.label_lower if model_admin is not None else None,
                    regex_samples=samples_here,
                )
            )

    visit(get_resolver(urlconf).url_patterns, "", [], {})
    return walked


def _static_samples(url: WalkedUrl) -> dict[str, str]:
    """Sample values good enough to resolve (object ids are replaced by real ones at test time)."""
    values = dict.fromkeys(url.params, "1")
    values.update(url.regex_samples)
    if "url" in url.params:  # the admin's catch-all
        values["url"] = "no-such-page/"
    if "code" in url.params:
        values["code"] = "x"
    return values


def _check_walk(walked: list[WalkedUrl], urlconf: str) -> None:
    """Each template, filled in, must resolve back to the pattern it came from."""
    for url in walked:
        path = url.fill(_static_samples(url))
        match = resolve(path, urlconf=urlconf)
        assert match.func is url.callback, f"{path} resolves to {match.func}, walked from {url.template}"


TENANT_URLS = walk_urlconf(TENANT_URLCONF)
PUBLIC_URLS = walk_urlconf(PUBLIC_URLCONF)
if len(TENANT_URLS) < MIN_TENANT_URLS:
    raise RuntimeError(f"the walk of {TENANT_URLCONF} found only {len(TENANT_URLS)} URLs: it is broken")
_check_walk(TENANT_URLS, TENANT_URLCONF)
_check_walk(PUBLIC_URLS, PUBLIC_URLCONF)


def _cases(urls: list[WalkedUrl], credentials: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(url, method, credential, id=f"{credential}-{method} {url.template}")
        for url in urls
        for method in url.methods
        for credential in credentials
    ]


# --- what the walk must find -----------------------------------------------------------------


def test_the_walk_covers_pages_admin_and_api() -> None:
    templates = {url.template for url in TENANT_URLS}
    assert len(TENANT_URLS) >= MIN_TENANT_URLS
    for expected in (
        "/",
        "/admin/",
        "/admin/login/",
        "/admin/brand/user/",
        "/admin/brand/user/{object_id}/change/",
        "/admin/brand/auditentry/{object_id}/history/",
        "/admin/{app_label}/",
        "/api/v1/staff/",
        "/api/v1/staff/{user_id}/role/",
        "/api/v1/audit/",
        "/api/v1/me/",
    ):
        assert expected in templates, f"{expected} missing from the walk"
    # Every model registered in the brand admin has its changelist, add, change, delete and history.
    from tenants.brand.admin import site

    assert isinstance(site, AdminSite)
    for model in site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for suffix in ("", "add/", "{object_id}/change/", "{object_id}/delete/", "{object_id}/history/"):
            assert base + suffix in templates, f"{base + suffix} missing from the walk"


def test_only_the_known_endpoints_are_public() -> None:
    """A new AllowAny endpoint must be a deliberate choice: add it here after checking what it shows."""
    public = {url.template for url in TENANT_URLS if url.public}
    assert public == {
        "/",
        "/admin/login/",
        "/api/v1/site/",
        "/C/{code}",  # the page a scanned cap opens
        "/c/{code}",
        "/C/{code}/place",  # the position the scan page shares: authorised by the signed token it posts
        "/c/{code}/place",
        # Consumer identity and the member centre: member pages check the brand's signed member cookie
        # themselves (no staff session applies to them); the login pair runs WeChat OAuth.
        "/wx/login/",
        "/wx/callback/",
        "/C/{code}/wx/login",
        "/C/{code}/wx/callback",
        "/C/{code}/consent",
        "/C/{code}/rules",  # campaign rules and, after the end, every draw: public by law and by design
        "/r/{campaign_id}/",
        "/r/{campaign_id}/draws/",
        "/m/me/",
        "/m/me/export/",
        "/m/me/erase/",
        "/m/me/payouts/{payout_id}/simulate-confirm/",
        "/m/invite/",
        "/m/invite/{token}/",
        "/m/privacy/",
        "/m/privacy/consent/",
        # Card collecting: the member's cards and gift links (signed-in members only, checked by the
        # views; a gift link's token is 256 random bits).
        "/m/cards/",
        "/m/cards/gift/",
        "/m/cards/exchange/",
        "/m/cards/g/{token}/",
        "/m/cards/g/{token}/cancel/",
        # A store's or a clerk's QR at the till: the token is the store's random one or signed.
        "/s/{token}/",
        "/s/{number}/{token}/",
        # Distribution (分销): public rules, share links, the affiliate centre (signed-in members only,
        # checked by the views).
        "/d/rules/",
        "/d/s/{token}/",
        "/d/me/",
        "/d/me/apply/",
        "/d/me/withdraw/",
        "/d/me/withdrawals/{withdrawal_id}/cancel/",
        # The shop: the catalog is public; cart, checkout, orders and addresses check the member
        # cookie in the views (someone else's order or address is a 404).
        "/shop/",
        "/shop/p/{product_id}/",
        "/shop/mall/",
        "/shop/cart/",
        "/shop/cart/add/",
        "/shop/cart/quantity/",
        "/shop/cart/select/",
        "/shop/cart/remove/",
        "/shop/checkout/",
        "/shop/orders/",
        "/shop/orders/{number}/",
        "/shop/orders/{number}/pay/",
        "/shop/orders/{number}/simulate-pay/",
        "/shop/orders/{number}/cancel/",
        "/shop/orders/{number}/receive/",
        "/shop/addresses/",
        "/shop/addresses/{address_id}/default/",
        "/shop/addresses/{address_id}/delete/",
        "/pay/notify/",  # WeChat Pay's notifications: authorised by WeChat's signature, checked per brand
        "/pay/notify/{number}/",
        "/t/login/",  # the terminal H5: its pages check sign-in and role themselves
        "/t/",
        "/t/scan/",
        "/t/redeem/",
        "/t/clerk-scan/",  # store rewards in the terminal: sign-in and role checked by the views
        "/t/earnings/",
        "/t/withdraw/",
        "/t/qr/me.png",
        "/t/qr/store.png",
        "/api/v1/auth/csrf/",
        "/api/v1/auth/login/",
        "/api/v1/auth/logout/",
        "/api/schema/",
    }
    assert {url.template for url in PUBLIC_URLS if url.public} == {"/", "/ops/api/schema/"}


# --- every brand URL, foreign credentials ----------------------------------------------------


@pytest.fixture
def beta_samples(beta: Brand) -> dict[str, dict[str, str]]:
    """Per model label: path parameters naming an existing object of beta (its owner, etc.)."""
    owner_id = str(beta.users["owner"].pk)
    with schema_context(beta.schema):
        user_type = ContentType.objects.get_for_model(User)
        common = {
            "user_id": owner_id,
            "id": owner_id,
            "object_id": owner_id,
            "content_type_id": str(user_type.pk),
            "url": "no-such-page/",
            "code": "NOTACODE",
            # Codes API and API keys: ids need not exist, a stranger is refused before any lookup.
            "batch_id": "1",
            "upload_id": "1",
            "key_id": "1",
            "campaign_id": "1",
            "payout_id": "1",
            "number": "1",
            "token": "not-a-token",
            "member_id": "1",
            "claim_id": "1",
            "withdrawal_id": "1",
            "product_id": "1",
            "address_id": "1",
        }
        common.update(_channel_samples())
        samples: dict[str, dict[str, str]] = {"": common}
        for model in (User, Group, BrandProfile, AuditEntry, Dealer, Store, ChannelStaff):
            first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
            assert first is not None, f"beta has no {model._meta.label_lower} to aim at"
            samples[model._meta.label_lower] = {**common, "object_id": str(first)}
    return samples


def _channel_samples() -> dict[str, str]:
    """A dealer, a store and a store clerk of the current brand (for the channel API's detail URLs)."""
    dealer = channel.create_dealer(code="ISO-D1", name="样本经销商", areas=["520100"])
    store = channel.create_store(code="ISO-S1", name="样本门店", dealer_id=dealer.pk, region_code="520102")
    clerk = channel.add_channel_staff(role="store_clerk", phone="13900000001", store_id=store.pk)
    return {"dealer_id": str(dealer.pk), "store_id": str(store.pk), "staff_id": str(clerk.pk)}


def _credentials(kind: str, alpha: Brand) -> dict[str, Any]:
    """Cookies and headers of a client that is somebody, but not on beta."""
    if kind == "alpha-owner-session":
        cookies = signed_in_cookies(alpha)
        return {"cookies": cookies, "headers": {"HTTP_X_CSRFTOKEN": cookies[settings.CSRF_COOKIE_NAME]}}
    if kind == "ops-token":
        return {"cookies": {}, "headers": {"HTTP_AUTHORIZATION": f"Bearer {OPS_TOKEN}"}}
    if kind == "ops-password":
        raw = base64.b64encode(b"ops-admin:ops-admin-password").decode()
        return {"cookies": {}, "headers": {"HTTP_AUTHORIZATION": f"Basic {raw}"}}
    raise AssertionError(kind)


def _request(client: Client, method: str, path: str, follow: bool = False) -> Any:
    call = getattr(client, method.lower())
    if method == "GET":
        return call(path, follow=follow)
    return call(path, data={}, content_type="application/json", follow=follow)


def _assert_unauthenticated_refusal(url: WalkedUrl, response: Any, path: str) -> None:
    if url.kind == "admin":
        assert response.status_code == 302, f"{path}: {response.status_code} {response.content[:300]!r}"
        location = response["Location"]
        # The admin sends strangers to its login page; its logout view sends them to the index first.
        assert location.startswith("/admin/login/?next=") or (url.name == "logout" and location == "/admin/"), location
    else:
        assert response.status_code in (401, 403), f"{path}: {response.status_code} {response.content[:300]!r}"
        assert response.json()["code"] in REFUSAL_CODES, response.content


@pytest.mark.parametrize(
    ("url", "method", "credential"),
    _cases(TENANT_URLS, ("alpha-owner-session", "ops-token", "ops-password")),
)
def test_foreign_credentials_get_nothing_on_beta(
    url: WalkedUrl, method: str, credential: str, alpha: Brand, beta: Brand, beta_samples: dict[str, dict[str, str]]
) -> None:
    path = url.fill(beta_samples.get(url.model_label or "", beta_samples[""]) | url.regex_samples)
    creds = _credentials(credential, alpha)
    stranger = client_with_cookies(beta.host, creds["cookies"], **creds["headers"])
    users_before = _usernames(beta)

    response = _request(stranger, method, path)
    body = response.content.decode(errors="replace")
    assert response.status_code < 500, body[:500]
    assert not leaked(body, alpha), f"{path} on beta shows alpha's data"

    if url.public:
        # Open to anyone; then it must be beta's, show nothing of alpha, and let nobody in.
        if url.template in ("/", "/api/v1/site/", "/admin/login/") and response.status_code == 200:
            assert beta.tenant.name in body
        me = stranger.get("/api/v1/me/")
        assert me.status_code in (401, 403), me.content
        assert me.json()["code"] == "not_authenticated"
    else:
        _assert_unauthenticated_refusal(url, response, path)
        if url.kind == "admin":
            # Following the redirects ends on beta's own login page.
            final = _request(stranger, method, path, follow=True)
            assert final.request["PATH_INFO"] == "/admin/login/"
            assert final.status_code == 200
            page = final.content.decode()
            assert beta.tenant.name in page
            assert not leaked(page, alpha)
        # And beta's own owner does get in where the stranger was refused: the URL is real.
        if method == "GET":
            own = _request(beta.client("owner"), method, path)
            if url.kind == "admin":
                assert not (own.status_code == 302 and own["Location"].startswith("/admin/login/")), path
            else:
                assert own.status_code not in (401, 403), (path, own.content)
    assert _usernames(beta) == users_before, "a refused request changed beta's staff"


def _usernames(brand: Brand) -> set[str]:
    with schema_context(brand.schema):
        return set(User.objects.values_list("username", flat=True))


@pytest.mark.parametrize(("url", "method", "credential"), _cases(PUBLIC_URLS, ("alpha-owner-session",)))
def test_a_brand_session_gets_nothing_from_the_ops_api(
    url: WalkedUrl, method: str, credential: str, alpha: Brand, beta: Brand
) -> None:
    cookies = signed_in_cookies(alpha)
    stranger = client_with_cookies("localhost", cookies, HTTP_X_CSRFTOKEN=cookies[settings.CSRF_COOKIE_NAME])
    values = dict.fromkeys(url.params, "1") | {"code": alpha.tenant.code}
    path = url.fill(values)

    response = _request(stranger, method, path)
    body = response.content.decode(errors="replace")
    assert response.status_code < 500, body[:500]
    if url.public:
        assert response.status_code == 200
    else:
        assert response.status_code == 401, f"{path}: {response.status_code} {body[:300]}"
        assert response.json()["code"] == "not_authenticated"
    # Not even its own brand's record: no schema name, no host, no status.
    assert not leaked(body, alpha)
    assert not leaked(body, beta)
    assert Tenant.objects.get(pk=alpha.tenant.pk).status == TenantStatus.READY


def test_brand_staff_passwords_do_not_open_the_ops_api(alpha: Brand) -> None:
    for username, password in (("owner", OWNER_PASSWORD), ("operator_alpha", STAFF_PASSWORD)):
        raw = base64.b64encode(f"{username}:{password}".encode()).decode()
        client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Basic {raw}")
        response = client.get("/ops/api/v1/brands/")
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "authentication_failed"


# --- sessions and cookies --------------------------------------------------------------------


def _api_login(brand: Brand, username: str, password: str, **headers: str) -> Client:
    """A real sign-in through the brand API, CSRF enforced as a browser would meet it."""
    client = Client(HTTP_HOST=brand.host, enforce_csrf_checks=True, **headers)
    assert client.get("/api/v1/auth/csrf/").status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/api/v1/auth/login/",
        {"username": username, "password": password},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content
    assert response.json()["username"] == username
    return client


def test_the_owners_share_user_id_1_yet_alphas_cookies_do_not_sign_in_on_beta(alpha: Brand, beta: Brand) -> None:
    # The precondition that makes this interesting: the same user id in both schemas.
    assert alpha.users["owner"].pk == beta.users["owner"].pk == 1
    with schema_context(beta.schema):
        beta_owner_password = User.objects.get(pk=1).password
        beta_profile = BrandProfile.objects.values().get(id=1)
        beta_staff = User.objects.count()

    signed_in = _api_login(alpha, "owner", OWNER_PASSWORD)
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    csrf = signed_in.cookies[settings.CSRF_COOKIE_NAME]
    # Host-only cookies: a browser never sends them to another brand's host in the first place.
    assert session["domain"] == ""
    assert csrf["domain"] == ""
    assert signed_in.get("/api/v1/me/").json()["username"] == "owner"

    stranger = client_with_cookies(
        beta.host,
        {settings.SESSION_COOKIE_NAME: session.value, settings.CSRF_COOKIE_NAME: csrf.value},
        enforce_csrf_checks=True,
        HTTP_X_CSRFTOKEN=csrf.value,
    )
    me = stranger.get("/api/v1/me/")
    assert me.status_code == 403
    assert me.json()["code"] == "not_authenticated"
    assert stranger.get("/api/v1/staff/").json()["code"] == "not_authenticated"
    assert stranger.get("/api/v1/audit/").json()["code"] == "not_authenticated"
    created = stranger.post(
        "/api/v1/staff/",
        {"username": "planted_by_alpha", "password": STAFF_PASSWORD, "role": "owner"},
        content_type="application/json",
    )
    assert created.status_code == 403
    patched = stranger.patch("/api/v1/profile/", {"display_name": "被阿尔法改了"}, content_type="application/json")
    assert patched.status_code == 403
    admin_post = stranger.post(
        "/admin/brand/user/1/password/",
        {"password1": "Taken-over-2026!", "password2": "Taken-over-2026!", "csrfmiddlewaretoken": csrf.value},
    )
    assert admin_post.status_code == 302
    assert admin_post["Location"].startswith("/admin/login/")

    with schema_context(beta.schema):
        assert User.objects.count() == beta_staff
        assert not User.objects.filter(username="planted_by_alpha").exists()
        assert User.objects.get(pk=1).password == beta_owner_password
        assert BrandProfile.objects.values().get(id=1) == beta_profile
    # alpha's session itself is untouched by all that.
    assert signed_in.get("/api/v1/me/").json()["username"] == "owner"


def test_alphas_session_record_planted_in_beta_still_does_not_sign_in_as_betas_user_1(
    alpha: Brand, beta: Brand, alpha_owner_cookies: dict[str, str]
) -> None:
    """Even if alpha's session row reached beta's store, it is bound to alpha's owner's password hash."""
    key = alpha_owner_cookies[settings.SESSION_COOKIE_NAME]
    with schema_context(alpha.schema):
        row = Session.objects.get(session_key=key)
        alpha_hash = User.objects.get(pk=1).password
    with schema_context(beta.schema):
        assert User.objects.get(pk=1).password != alpha_hash
        Session.objects.create(session_key=row.session_key, session_data=row.session_data, expire_date=row.expire_date)

    stranger = client_with_cookies(beta.host, alpha_owner_cookies)
    assert stranger.get("/api/v1/me/").status_code == 403
    admin = stranger.get("/admin/")
    assert admin.status_code == 302
    assert admin["Location"].startswith("/admin/login/")


def test_an_owner_reads_only_their_own_brands_staff_and_audit_log(alpha: Brand, beta: Brand) -> None:
    request_id = f"isolation-{uuid.uuid4().hex}"
    alpha_owner = _api_login(alpha, "owner", OWNER_PASSWORD, HTTP_X_REQUEST_ID=request_id)
    beta_owner = _api_login(beta, "owner", OWNER_PASSWORD)

    # On its own host: only its own staff.
    staff = alpha_owner.get("/api/v1/staff/").json()
    names = {row["username"] for row in staff}
    assert {user.username for user in alpha.users.values()} <= names
    assert not [name for name in names if name.endswith("_beta")]
    assert all(beta.tenant.name not in (row["display_name"] or "") for row in staff)
    # Its sign-in is in its own audit log.
    own_log = alpha_owner.get("/api/v1/audit/", {"actor": "owner", "action": "login"}).json()["results"]
    assert request_id in {row["request_id"] for row in own_log}

    # The same session on beta's host: nothing.
    cookies = {name: morsel.value for name, morsel in alpha_owner.cookies.items()}
    on_beta = client_with_cookies(beta.host, cookies)
    for path in ("/api/v1/staff/", "/api/v1/audit/", "/api/v1/audit/?actor=owner"):
        response = on_beta.get(path)
        assert response.status_code == 403, (path, response.content)
        assert not leaked(response.content.decode(), beta)

    # beta's owner reading beta's log finds nothing of alpha, even when searching for it.
    beta_log = beta_owner.get("/api/v1/audit/", {"limit": 1000}).json()
    assert request_id not in beta_owner.get("/api/v1/audit/", {"actor": "owner"}).content.decode()
    assert not leaked(str(beta_log), alpha)
    for row in beta_log["results"]:
        assert row["request_id"] != request_id
    assert beta_owner.get("/api/v1/audit/", {"actor": "operator_alpha"}).json()["count"] == 0


# --- cache keys ------------------------------------------------------------------------------


@pytest.fixture
def cache_key(alpha: Brand, beta: Brand) -> Iterator[str]:
    key = f"isolation:{uuid.uuid4().hex}"
    yield key
    for brand in (alpha, beta):
        with schema_context(brand.schema):
            cache.delete(key)


def test_a_cache_entry_of_alpha_is_invisible_and_untouchable_in_beta(alpha: Brand, beta: Brand, cache_key: str) -> None:
    with schema_context(alpha.schema):
        cache.set(cache_key, "alpha's secret", 60)
        assert cache.make_key(cache_key).startswith(f"{alpha.schema}:")
    with schema_context(beta.schema):
        assert cache.get(cache_key) is None
        assert cache.get_many([cache_key]) == {}
        assert not cache.has_key(cache_key)
        # Writing and deleting the same key in beta touches beta's entry only.
        assert cache.add(cache_key, "beta's own", 60), "alpha's entry made add() fail in beta"
        cache.delete(cache_key)
        if hasattr(cache, "keys"):  # django-redis: pattern searches stay inside the schema too
            assert cache.keys("isolation:*") == []
    with schema_context(alpha.schema):
        assert cache.get(cache_key) == "alpha's secret"
        if hasattr(cache, "keys"):
            assert cache_key in cache.keys("isolation:*")
    # The public schema (platform host) does not see it either.
    connection.set_schema_to_public()
    assert cache.get(cache_key) is None


# --- uploaded files --------------------------------------------------------------------------


@pytest.fixture
def upload_name(alpha: Brand, beta: Brand) -> Iterator[str]:
    name = f"isolation/{uuid.uuid4().hex}.txt"
    yield name
    for brand in (alpha, beta):
        with schema_context(brand.schema):
            if default_storage.exists(name):
                default_storage.delete(name)


def test_a_file_uploaded_in_alpha_lives_under_alphas_media_root_and_beta_cannot_open_it(
    alpha: Brand, beta: Brand, upload_name: str
) -> None:
    media_root = Path(settings.MEDIA_ROOT).resolve()
    with schema_context(alpha.schema):
        saved = default_storage.save(upload_name, ContentFile(b"alpha's price list"))
        assert saved == upload_name
        on_disk = Path(default_storage.path(saved)).resolve()
        assert on_disk.is_relative_to(media_root / alpha.schema)
        assert on_disk.read_bytes() == b"alpha's price list"
        assert default_storage.url(saved).startswith(f"{settings.MEDIA_URL}{alpha.schema}/")
    with schema_context(beta.schema):
        assert Path(default_storage.path(saved)).resolve().is_relative_to(media_root / beta.schema)
        assert not default_storage.exists(saved)
        with pytest.raises(FileNotFoundError):
            default_storage.open(saved)
        assert Path(saved).name not in default_storage.listdir("isolation")[1]
        # Nor by walking up out of its own folder.
        for sneaky in (f"../{alpha.schema}/{saved}", str(on_disk)):
            with pytest.raises(SuspiciousFileOperation):
                default_storage.open(sneaky)
    with schema_context(alpha.schema):
        assert default_storage.open(saved).read() == b"alpha's price list"


# --- what errors give away -------------------------------------------------------------------


def _normalised(response: Any, object_id: int) -> tuple[int, str, str]:
    """Status, redirect and body with the requested id itself blanked out."""

    def blank(text: str) -> str:
        return text.replace(f"/{object_id}/", "/<id>/")

    return response.status_code, blank(response.get("Location", "")), blank(response.content.decode())


def test_a_404_on_beta_for_an_object_only_alpha_has_looks_like_any_other_404(alpha: Brand, beta: Brand) -> None:
    with schema_context(alpha.schema):
        only_in_alpha = staff_services.create_staff(
            username="secret_alpha_hire", password=STAFF_PASSWORD, role="finance", display_name="阿尔法的秘密员工"
        )
    never = 987_654_321
    with schema_context(beta.schema):
        assert not User.objects.filter(pk__in=[only_in_alpha.pk, never]).exists()
    owner = beta.client("owner")

    def both(method: str, template: str, **kwargs: Any) -> None:
        seen = []
        for object_id in (only_in_alpha.pk, never):
            response = getattr(owner, method)(template.format(object_id), **kwargs)
            seen.append(_normalised(response, object_id))
            body = response.content.decode()
            assert "secret_alpha_hire" not in body
            assert not leaked(body, alpha)
        assert seen[0] == seen[1], f"{template}: {seen}"
        assert seen[0][0] in (302, 404)

    role = {"data": {"role": "operator"}, "content_type": "application/json"}
    both("post", "/api/v1/staff/{}/role/", **role)
    both("post", "/api/v1/staff/{}/deactivate/")
    assert owner.post(f"/api/v1/staff/{never}/role/", **role).json() == {
        "code": "staff_not_found",
        "message": "员工不存在。",
    }
    for suffix in ("change/", "delete/", "history/", "password/"):
        both("get", "/admin/brand/user/{}/" + suffix)

    # What the admin then says on the page it redirects to is the same too, id aside.
    messages = []
    for object_id in (only_in_alpha.pk, never):
        page = beta.client("owner").get(f"/admin/brand/user/{object_id}/change/", follow=True)
        assert page.status_code == 200
        messages.append([str(m).replace(str(object_id), "<id>") for m in page.context["messages"]])
    assert messages[0] == messages[1]
    assert messages[0], "the admin explains the missing object"
