"""Members: identified consumers of a brand (WeChat openid), their consents, phone and own data.

Plain functions over the current brand's schema. A member is created the first time a consumer is
identified (commerce.wechat gives the openid); concurrent first identifications of one openid end
with one member (the database's unique openid decides, the loser reads the winner's row).

Personal information (PIPL): the phone number is stored wrapped by the platform master key ring,
bound to the brand, the member and the field (tenants.keys.field_context); consents are an
append-only record; `export` gives a member everything kept about them here, and `erase` removes
every piece of identity while keeping the rows that money and points ledgers point at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import MemberErrorCode as E
from commerce.models import ConsentPurpose, Member, MemberConsent, PointsEntry
from tenants import keys
from tenants.db import connection
from tenants.errors import JiumaError, NotFound

_MOBILE = re.compile(r"1[3-9]\d{9}")
_MAX_OPENID = 64
# How often last_seen_at is refreshed: once a day is enough to tell active members, and a scan then
# costs no write on the member row.
SEEN_RESOLUTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Identity:
    """What WeChat tells about a consumer (commerce.wechat.oauth)."""

    openid: str
    unionid: str = ""
    nickname: str = ""
    avatar_url: str = ""


def _tenant_number() -> int:
    number = getattr(getattr(connection, "tenant", None), "number", None)
    if number is None:
        raise JiumaError(E.NO_BRAND, _("请在品牌站点内操作。"))
    return int(number)


def identify(identity: Identity, *, now: datetime | None = None) -> tuple[Member, bool]:
    """The member of this openid, created if new (returns it and whether it was created). The
    profile fields WeChat gave are refreshed when they changed; an erased member's openid is free,
    so a consumer who erased their data starts again as a new member."""
    openid = identity.openid.strip()
    if not openid or len(openid) > _MAX_OPENID or not openid.isprintable():
        raise JiumaError(E.INVALID_IDENTITY, _("微信身份信息无效，请重新进入。"))
    now = now or timezone.now()
    profile = {
        "unionid": identity.unionid[:64],
        "nickname": identity.nickname[:64],
        "avatar_url": identity.avatar_url[:500] if identity.avatar_url.startswith("https://") else "",
    }
    member = Member.objects.filter(openid=openid).first()
    created = False
    if member is None:
        try:
            with transaction.atomic():
                member = Member.objects.create(openid=openid, created_at=now, last_seen_at=now, **profile)
                created = True
        except IntegrityError:  # another request created it first
            member = Member.objects.get(openid=openid)
    changes: dict[str, Any] = {
        field: value for field, value in profile.items() if value and getattr(member, field) != value
    }
    if not created and (changes or (now - member.last_seen_at).total_seconds() > SEEN_RESOLUTION_SECONDS):
        changes["last_seen_at"] = now
        Member.objects.filter(pk=member.pk).update(**changes)
        for field, value in changes.items():
            setattr(member, field, value)
    return member, created


def get_member(member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id).first()
    if member is None:
        raise NotFound(E.MEMBER_NOT_FOUND, _("会员不存在。"))
    if member.is_erased:
        raise NotFound(E.MEMBER_ERASED, _("该会员已注销。"))
    return member


def record_consent(
    member: Member, purpose: str, *, version: str, granted: bool, ip: str | None = None, user_agent: str = ""
) -> MemberConsent:
    if purpose not in ConsentPurpose.values or not version or len(version) > 32:
        raise JiumaError(E.INVALID_CONSENT, _("授权事项或版本无效。"))
    if member.is_erased:
        raise NotFound(E.MEMBER_ERASED, _("该会员已注销。"))
    consent = MemberConsent.objects.create(
        member=member, purpose=purpose, version=version, granted=granted, ip=ip or None, user_agent=user_agent[:300]
    )
    member.__dict__.pop(_KNOWN_CONSENTS, None)  # what signed_in_member read is out of date now
    return consent


# Consents read together with the member (signed_in_member), kept on that Member instance.
_KNOWN_CONSENTS = "_jiuma_known_consents"


def _latest_consent(member: Any, purpose: str) -> QuerySet[MemberConsent]:
    return MemberConsent.objects.filter(member=member, purpose=purpose).order_by("-at", "-id")


# The signed-in member and their latest decision on one consent purpose, in one statement. Raw SQL:
# this runs on every consumer page, and building the equivalent ORM query costs several times the
# round trip itself.
_MEMBER_WITH_CONSENT = """
SELECT m.*, c.granted AS _consent_granted, c.version AS _consent_version
FROM commerce_member m
LEFT JOIN LATERAL (
    SELECT granted, version FROM commerce_memberconsent
    WHERE member_id = m.id AND purpose = %s
    ORDER BY at DESC, id DESC
    LIMIT 1
) c ON true
WHERE m.id = %s AND m.erased_at IS NULL
"""


def signed_in_member(member_id: int, purpose: str, *, version: str) -> Member | None:
    """The member (not erased) with has_consent(member, purpose, version=version) already known."""
    found = next(iter(Member.objects.raw(_MEMBER_WITH_CONSENT, [purpose, member_id])), None)
    return remember_consent(found, purpose, version=version) if found is not None else None


def remember_consent(member: Member, purpose: str, *, version: str) -> Member:
    """Keep the consent read with the member (columns _consent_granted, _consent_version) on it, for
    has_consent."""
    granted, read_version = member.__dict__.pop("_consent_granted", None), member.__dict__.pop("_consent_version", None)
    known = member.__dict__.setdefault(_KNOWN_CONSENTS, {})
    known[(purpose, version)] = bool(granted) and read_version == version
    return member


def has_consent(member: Member, purpose: str, *, version: str | None = None) -> bool:
    """Whether the member's newest decision on `purpose` (of `version`, if given) is a grant."""
    known = member.__dict__.get(_KNOWN_CONSENTS)
    if known is not None and version is not None and (purpose, version) in known:
        return bool(known[(purpose, version)])
    latest = _latest_consent(member, purpose).first()
    return latest is not None and latest.granted and (version is None or latest.version == version)


def _phone_context(member: Member) -> bytes:
    return keys.field_context(_tenant_number(), "member.phone", member.pk)


def set_phone(member: Member, phone: str) -> Member:
    """Keep the member's mobile number (mainland 11 digits), encrypted; "" removes it."""
    phone = re.sub(r"[\s-]", "", phone or "").removeprefix("+86")
    if member.is_erased:
        raise NotFound(E.MEMBER_ERASED, _("该会员已注销。"))
    if not phone:
        Member.objects.filter(pk=member.pk).update(phone_key_id="", phone_wrapped=None, phone_hint="")
        member.phone_key_id, member.phone_wrapped, member.phone_hint = "", None, ""
        return member
    if not _MOBILE.fullmatch(phone):
        raise JiumaError(E.INVALID_PHONE, _("请填写 11 位手机号码。"), fields={"phone": phone[:20]})
    key_id, wrapped = keys.master_key_ring().wrap(phone.encode(), _phone_context(member))
    hint = f"{phone[:3]}****{phone[-4:]}"
    Member.objects.filter(pk=member.pk).update(phone_key_id=key_id, phone_wrapped=wrapped, phone_hint=hint)
    member.phone_key_id, member.phone_wrapped, member.phone_hint = key_id, wrapped, hint
    return member


def phone_of(member: Member) -> str:
    """The member's phone number in clear ("" if none). Only for the member themself and for staff
    whose role may see it; never log it."""
    if not member.phone_wrapped:
        return ""
    return (
        keys.master_key_ring().unwrap(member.phone_key_id, bytes(member.phone_wrapped), _phone_context(member)).decode()
    )


def export(member: Member) -> dict[str, Any]:
    """Everything commerce keeps about a member, as plain data (their copy, PIPL art. 45)."""
    return {
        "member": {
            "id": member.pk,
            "openid": member.openid,
            "unionid": member.unionid,
            "nickname": member.nickname,
            "avatar_url": member.avatar_url,
            "phone": phone_of(member),
            "points_balance": member.points_balance,
            "created_at": timezone.localtime(member.created_at).isoformat(),
            "last_seen_at": timezone.localtime(member.last_seen_at).isoformat(),
        },
        "consents": [
            {
                "purpose": consent.purpose,
                "version": consent.version,
                "granted": consent.granted,
                "at": timezone.localtime(consent.at).isoformat(),
                "ip": consent.ip,
            }
            for consent in member.consents.order_by("at", "id")
        ],
        "points": [
            {
                "kind": entry.kind,
                "amount": entry.amount,
                "balance_after": entry.balance_after,
                "source": entry.source,
                "note": entry.note,
                "at": timezone.localtime(entry.created_at).isoformat(),
                "expires_at": timezone.localtime(entry.expires_at).isoformat() if entry.expires_at else None,
            }
            for entry in PointsEntry.objects.filter(member=member).order_by("id")
        ],
    }


def erase(member: Member) -> Member:
    """Delete the member's personal information at their request. The row stays (ledgers point at
    it) with no openid, unionid, nickname, avatar or phone; consent records keep only what was
    decided and when. The withdrawal of every consent is recorded first."""
    if member.is_erased:
        return member
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        if locked.is_erased:
            return locked
        for purpose in ConsentPurpose.values:
            if has_consent(locked, purpose):
                record_consent(locked, purpose, version="erased", granted=False)
        MemberConsent.objects.filter(member=locked).update(ip=None, user_agent="")
        now = timezone.now()
        Member.objects.filter(pk=locked.pk).update(
            openid=None,
            unionid="",
            nickname="",
            avatar_url="",
            phone_key_id="",
            phone_wrapped=None,
            phone_hint="",
            erased_at=now,
        )
    locked.refresh_from_db()
    return locked
