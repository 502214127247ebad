"""Referral (邀请有礼): a member shares a signed link; a new member who accepts it becomes their
invitee; when the invitee's first verified scan happens (their first draw), both earn points, once.

Refused: inviting oneself (the same member, or the same WeChat person by unionid), loops (accepting
an invite from someone you brought in, however far down), a second inviter, and members who have
already scanned (not new). The inviter's reward cap is enforced under the inviter's row lock, so
two invitees' first scans at once cannot both pass a last free place.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Member, PointsKind
from commerce.services import points
from rewards.models import Claim, Referral, ReferralProgram, ReferralStatus
from tenants.db import connection
from tenants.errors import Conflict, JiumaError

_SALT = "jiuma.rewards.referral"
MAX_CHAIN = 64  # how far up the invite chain a loop is looked for


def program() -> ReferralProgram:
    return ReferralProgram.current()


def link_token(inviter: Member) -> str:
    """The signed part of an inviter's share link (names the brand and the inviter)."""
    return signing.dumps([int(connection.tenant.number), inviter.pk], salt=_SALT, compress=False)


def inviter_of(token: str) -> Member | None:
    try:
        number, inviter_id = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if number != int(connection.tenant.number):
        return None
    return Member.objects.filter(pk=inviter_id, erased_at__isnull=True).first()


def accept(inviter: Member, invitee: Member, *, now: datetime | None = None) -> Referral:
    """Make `invitee` the invitee of `inviter` (see the module doc for what is refused)."""
    now = now or timezone.now()
    if not program().enabled:
        raise Conflict("referral_disabled", _("邀请活动未开启。"))
    if inviter.pk == invitee.pk or (inviter.unionid and inviter.unionid == invitee.unionid):
        raise JiumaError("self_referral", _("不能接受自己的邀请。"))
    if Claim.objects.filter(member=invitee).exists():
        raise Conflict("not_a_new_member", _("您已参与过扫码活动，不能再接受邀请。"))
    # A loop: the inviter was (directly or not) brought in by the invitee.
    above = inviter.pk
    for _step in range(MAX_CHAIN):
        parent = Referral.objects.filter(invitee_id=above).values_list("inviter_id", flat=True).first()
        if parent is None:
            break
        if parent == invitee.pk:
            raise JiumaError("referral_loop", _("不能接受由您邀请的人发出的邀请。"))
        above = parent
    try:
        with transaction.atomic():
            return Referral.objects.create(inviter=inviter, invitee=invitee, created_at=now)
    except IntegrityError as exc:
        raise Conflict("already_referred", _("您已接受过其他人的邀请。")) from exc


def on_first_claim(member: Member, claim: Claim, *, now: datetime | None = None) -> Referral | None:
    """Reward the referral of `member`, if this claim is their first draw (call in the claim's
    transaction). Returns the referral if it was rewarded now."""
    now = now or timezone.now()
    referral = Referral.objects.filter(invitee=member, status=ReferralStatus.PENDING).first()
    if referral is None:
        return None
    if Claim.objects.filter(member=member).exclude(pk=claim.pk).exists():
        return None  # not their first draw (accepted after scanning: accept() refuses that anyway)
    rules = program()
    if not rules.enabled:
        return None
    if now - referral.created_at > timedelta(days=rules.accept_days):
        Referral.objects.filter(pk=referral.pk, status=ReferralStatus.PENDING).update(status=ReferralStatus.EXPIRED)
        return None
    # The inviter's row lock serialises the cap check of two invitees scanning at once.
    Member.objects.select_for_update().filter(pk=referral.inviter_id).first()
    rewarded = Referral.objects.filter(inviter_id=referral.inviter_id, status=ReferralStatus.REWARDED).count()
    if rewarded >= rules.max_per_inviter:
        Referral.objects.filter(pk=referral.pk, status=ReferralStatus.PENDING).update(status=ReferralStatus.CAPPED)
        return None
    if not Referral.objects.filter(pk=referral.pk, status=ReferralStatus.PENDING).update(
        status=ReferralStatus.REWARDED, rewarded_at=now, claim=claim
    ):
        return None
    source = f"referral:{referral.pk}"
    if rules.inviter_points:
        points.credit(
            referral.inviter_id,
            rules.inviter_points,
            kind=PointsKind.REFERRAL,
            source=source,
            now=now,
            note=str(_("邀请好友首次扫码")),
        )
    if rules.invitee_points:
        points.credit(
            member.pk,
            rules.invitee_points,
            kind=PointsKind.REFERRAL,
            source=source,
            now=now,
            note=str(_("接受邀请首次扫码")),
        )
    referral.refresh_from_db()
    return referral
