"""SCIM provisioning: the identity provider creates, updates and deactivates people and pushes groups.

Each write is audited as "scim:<token name>". A SCIM group's display name maps through SsoGroupMapping,
like a name in the SSO groups claim, and what it grants has source "scim".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from govsite.accounts.models import ScimGroup, ScimToken, Source, User
from govsite.accounts.services.people import _deactivate, _reactivate
from govsite.accounts.services.scim_tokens import _require_live_token
from govsite.accounts.services.sso import _group_grants_sync


class AlreadyExists(ValidationError):
    """The write would duplicate a person's email or a group's name (SCIM answers 409 uniqueness)."""


@dataclass(frozen=True)
class ScimUserInput:
    """A person as the identity provider describes them (SCIM User: userName, name, active, externalId)."""

    email: str
    full_name: str = ""
    active: bool = True
    external_id: str = ""
    # The other SCIM attributes as the identity provider set them (name, displayName, emails, title...):
    # kept as sent and returned as kept; govsite acts on none of them.
    attributes: dict | None = None


def _scim_email(value: str) -> str:
    email = User.objects.normalize_email((value or "").strip()).lower()
    if not email:
        raise ValidationError({"userName": "userName (the person's email address) is required."})
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError(
            {"userName": f"userName must be an email address (it is the person's login in govsite), not {value!r}."}
        ) from exc
    return email


def _scim_grants_sync(*, user: User, label: str) -> dict:
    groups = ScimGroup.objects.filter(members=user).values_list("display_name", flat=True)
    return _group_grants_sync(
        user=user,
        groups=list(groups),
        source=Source.SCIM,
        reason="no longer in a SCIM group that grants it",
        actor_label=label,
        grant=user.is_active,
    )


@transaction.atomic(durable=True)
def scim_user_create(*, token: ScimToken, data: ScimUserInput) -> User:
    """POST /Users: a new person (no password: they sign in through SSO), or the re-hire of a person whose
    SCIM resource was deleted: the same person again, under a new SCIM id, with their history."""
    label = _require_live_token(token).actor_label
    email = _scim_email(data.email)
    existing = User.objects.select_for_update().filter(email__iexact=email).first()
    if existing is not None and existing.scim_deleted_at is not None:
        return _scim_user_reprovision(label=label, user=existing, data=data)
    if existing is not None:
        raise AlreadyExists({"userName": f"A person with userName {email} already exists."})
    user = User(
        email=email,
        full_name=data.full_name.strip()[:200],
        scim_external_id=data.external_id[:255],
        scim_attributes=data.attributes or {},
    )
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created by someone else between the check and the save
        raise AlreadyExists({"userName": f"A person with userName {email} already exists."}) from exc
    audit.record(
        actor_label=label,
        action="user.created",
        target=user,
        data={"email": email, "full_name": user.full_name, "external_id": user.scim_external_id, "via": "scim"},
    )
    if not data.active:
        _deactivate(actor=None, actor_label=label, user=user, reason="provisioned as inactive through SCIM")
    user.refresh_from_db()
    return user


@transaction.atomic(durable=True)
def scim_user_update(*, token: ScimToken, user: User, data: ScimUserInput) -> User:
    """PUT (and PATCH, once applied) /Users/<id>: the person becomes exactly `data`.

    `active: false` deactivates (ends sessions; the next leaver sweep revokes their keys), `active: true`
    reactivates; a deactivated person's SCIM groups grant nothing until then.
    """
    label = _require_live_token(token).actor_label
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.scim_deleted_at is not None:
        raise ValidationError({"id": "This person's SCIM resource was deleted."})
    return _scim_user_apply(label=label, user=user, data=data)


def _scim_user_apply(*, label: str, user: User, data: ScimUserInput) -> User:
    email = _scim_email(data.email)
    after = {
        "email": email,
        "full_name": data.full_name.strip()[:200],
        "scim_external_id": data.external_id[:255],
        "scim_attributes": data.attributes or {},
    }
    changes = {f: {"before": getattr(user, f), "after": v} for f, v in after.items() if getattr(user, f) != v}
    if "email" in changes and User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        raise AlreadyExists({"userName": f"Another person already has userName {email}."})
    if changes:
        for field, value in after.items():
            setattr(user, field, value)
        user.full_clean(exclude=["password"])
        try:
            with transaction.atomic():
                user.save(update_fields=list(changes))
        except IntegrityError as exc:
            raise AlreadyExists({"userName": f"Another person already has userName {email}."}) from exc
        if "scim_attributes" in changes:
            # The audit trail names the attributes that changed, not their values (addresses, phone numbers).
            before, now = changes["scim_attributes"]["before"] or {}, changes["scim_attributes"]["after"]
            changes["scim_attributes"] = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        event: dict = {"changes": changes, "via": "scim"}
        if "email" in changes:
            # allauth signs people in by their addresses too: the old one must not lead here any more
            # (a recycled address would otherwise open this person's account).
            stale = EmailAddress.objects.filter(user=user).exclude(email__iexact=email)
            event["sign_in_emails_removed"] = sorted(stale.values_list("email", flat=True))
            stale.delete()
        audit.record(actor_label=label, action="user.updated", target=user, data=event)
    if not data.active:
        _deactivate(actor=None, actor_label=label, user=user, reason="deactivated through SCIM (active: false)")
    elif _reactivate(actor=None, actor_label=label, user=user):
        user.refresh_from_db()
        _scim_grants_sync(user=user, label=label)
    user.refresh_from_db()
    return user


def _scim_user_reprovision(*, label: str, user: User, data: ScimUserInput) -> User:
    """The person comes back (a re-hire): a new provisioning, so a new SCIM id; what they had before (keys,
    events, the leaver report's rows) stays as it was."""
    previous = user.scim_provisioning
    user.scim_provisioning, user.scim_deleted_at = previous + 1, None
    user.save(update_fields=["scim_provisioning", "scim_deleted_at"])
    audit.record(
        actor_label=label,
        action="user.scim_reprovisioned",
        target=user,
        data={"email": user.email, "provisioning": user.scim_provisioning, "previous_provisioning": previous},
    )
    return _scim_user_apply(label=label, user=user, data=data)


@transaction.atomic(durable=True)
def scim_user_delete(*, token: ScimToken, user: User) -> User:
    """DELETE /Users/<id>: to the identity provider the person is gone (their SCIM id answers 404, they
    leave its queries and its groups); in govsite they are deactivated exactly as an admin would (the
    leaver sweep revokes their keys) and nothing about them is erased: the audit trail and the leaver
    report need them, and a later POST of their userName brings them back (scim_user_create)."""
    label = _require_live_token(token).actor_label
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.scim_deleted_at is not None:
        raise ValidationError({"id": "This person's SCIM resource was already deleted."})
    _deactivate(actor=None, actor_label=label, user=user, reason="deleted through SCIM (DELETE /Users)")
    groups = list(ScimGroup.objects.select_for_update().filter(members=user).order_by("pk"))
    for group in groups:
        group.members.remove(user)
        audit.record(
            actor_label=label,
            action="scim_group.updated",
            target=group,
            data={"changes": {"members_removed": [user.email]}, "why": "the member's SCIM resource was deleted"},
        )
    user.scim_deleted_at = timezone.now()
    user.save(update_fields=["scim_deleted_at"])
    audit.record(
        actor_label=label,
        action="user.scim_deleted",
        target=user,
        data={
            "email": user.email,
            "provisioning": user.scim_provisioning,
            "groups_left": [g.display_name for g in groups],
        },
    )
    if groups:
        _scim_grants_sync(user=user, label=label)
    user.refresh_from_db()
    return user


def _scim_members(member_ids: Iterable[int]) -> list[User]:
    wanted = set(member_ids)
    users = list(User.objects.filter(pk__in=wanted))
    missing = sorted(wanted - {u.pk for u in users})
    if missing:
        raise ValidationError({"members": f"No person with id {', '.join(map(str, missing))}."})
    return users


def _scim_group_name(display_name: str, *, exclude_pk: int | None = None) -> str:
    name = (display_name or "").strip()
    if not name:
        raise ValidationError({"displayName": "displayName is required."})
    if len(name) > 200:
        raise ValidationError({"displayName": "displayName is at most 200 characters."})
    if ScimGroup.objects.filter(display_name=name).exclude(pk=exclude_pk).exists():
        raise AlreadyExists({"displayName": f"A group named {name!r} already exists."})
    return name


def _scim_group_save(group: ScimGroup) -> None:
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:
        raise AlreadyExists({"displayName": f"A group named {group.display_name!r} already exists."}) from exc


@transaction.atomic(durable=True)
def scim_group_create(
    *, token: ScimToken, display_name: str, member_ids: Iterable[int] = (), external_id: str = ""
) -> ScimGroup:
    """POST /Groups: the members get what the group's name maps to (source "scim")."""
    label = _require_live_token(token).actor_label
    name = _scim_group_name(display_name)
    members = _scim_members(member_ids)
    group = ScimGroup(display_name=name, external_id=external_id[:255])
    _scim_group_save(group)
    group.members.set(members)
    audit.record(
        actor_label=label,
        action="scim_group.created",
        target=group,
        data={"display_name": name, "external_id": group.external_id, "members": sorted(u.email for u in members)},
    )
    for user in members:
        _scim_grants_sync(user=user, label=label)
    return group


@transaction.atomic(durable=True)
def scim_group_sync(
    *, token: ScimToken, group: ScimGroup, display_name: str, member_ids: Iterable[int], external_id: str
) -> ScimGroup:
    """PUT (and PATCH, once applied) /Groups/<id>: the group becomes exactly this name and these members;
    everyone whose groups changed has their SCIM grants recomputed."""
    label = _require_live_token(token).actor_label
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    name = _scim_group_name(display_name, exclude_pk=group.pk)
    members = {u.pk: u for u in _scim_members(member_ids)}
    current = {u.pk: u for u in group.members.all()}
    added = [members[pk] for pk in members.keys() - current.keys()]
    removed = [current[pk] for pk in current.keys() - members.keys()]
    changes: dict = {}
    if name != group.display_name:
        changes["display_name"] = {"before": group.display_name, "after": name}
    if external_id[:255] != group.external_id:
        changes["external_id"] = {"before": group.external_id, "after": external_id[:255]}
    if added:
        changes["members_added"] = sorted(u.email for u in added)
    if removed:
        changes["members_removed"] = sorted(u.email for u in removed)
    if not changes:
        return group
    group.display_name, group.external_id, group.updated_at = name, external_id[:255], timezone.now()
    _scim_group_save(group)
    if added:
        group.members.add(*added)
    if removed:
        group.members.remove(*removed)
    audit.record(actor_label=label, action="scim_group.updated", target=group, data={"changes": changes})
    # A new name maps to other teams and roles: everyone in the group is recomputed.
    affected = {**current, **members} if "display_name" in changes else {u.pk: u for u in added + removed}
    for user in sorted(affected.values(), key=lambda u: u.pk):
        _scim_grants_sync(user=user, label=label)
    return group


@transaction.atomic(durable=True)
def scim_group_delete(*, token: ScimToken, group: ScimGroup) -> None:
    """DELETE /Groups/<id>: the group goes, and with it what it granted its members."""
    label = _require_live_token(token).actor_label
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    members = list(group.members.order_by("pk"))
    audit.record(
        actor_label=label,
        action="scim_group.deleted",
        target=group,
        data={"display_name": group.display_name, "members": sorted(u.email for u in members)},
    )
    group.delete()
    for user in members:
        _scim_grants_sync(user=user, label=label)
