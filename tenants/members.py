"""Teams and members: the people of a workspace and the teams they sell in.

Members are added by e-mail (an existing user joins, else one without a password is made);
partner records then refer to them by that e-mail or username. A workspace keeps at least
one active admin; admins get Django admin (staff) access.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from tenants import team_history
from tenants.bounds import shown, text_check
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

TEAM_NAME_MAX = 100
EMAIL_MAX = 254
USERNAME_MAX = 150
DISPLAY_NAME_MAX = 150


def membership_add(
    *,
    tenant: Tenant,
    user: AbstractBaseUser,
    role: str,
    team: Team | None = None,
    team_effective_from: dt.date | str | None = None,
) -> Membership:
    """Add a user to a tenant with a role (imports, seeding); admins get Django admin
    (staff) access. A member already there takes the role and, when it differs, moves to
    `team` from `team_effective_from` (today by default; see tenants.team_history)."""
    role = _role(role)
    with transaction.atomic(), tenant_context(tenant):
        if team is not None and team.tenant_id != tenant.pk:
            raise NotFound("Team", field="team")
        membership, created = Membership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": role, "team": team, "is_active": True}
        )
        if not created:
            membership.role, membership.is_active = role, True
            membership.save(update_fields=["role", "is_active"])
            if membership.team_id != (team.pk if team is not None else None):
                team_history.member_team_move(
                    membership=membership, team=team, effective_from=team_effective_from
                )
    _grant_staff_to_admin(membership)
    return membership


def _team_name(name: str) -> str:
    text_check(name, field="name", max_length=TEAM_NAME_MAX, what="a team name")
    name = name.strip()
    if not name or len(name) > TEAM_NAME_MAX:
        raise ValidationFailed(f"A team name has 1 to {TEAM_NAME_MAX} characters.", field="name")
    return name


def _team_name_taken(name: str) -> PublicError:
    return PublicError(f"A team named {name!r} exists.", code=ErrorCode.CONFLICT, field="name")


def team_create(*, tenant: Tenant, name: str) -> Team:
    name = _team_name(name)
    with tenant_context(tenant):
        if Team.objects.filter(name=name).exists():
            raise _team_name_taken(name)
        try:
            with transaction.atomic():
                return Team.objects.create(tenant=tenant, name=name)
        except IntegrityError as exc:  # created meanwhile by another request
            raise _team_name_taken(name) from exc


def team_rename(*, team: Team, name: str) -> Team:
    name = _team_name(name)
    with tenant_context(team.tenant_id):
        if Team.objects.filter(name=name).exclude(pk=team.pk).exists():
            raise _team_name_taken(name)
        try:
            with transaction.atomic():
                Team.objects.filter(pk=team.pk).update(name=name)
        except IntegrityError as exc:
            raise _team_name_taken(name) from exc
        team.name = name
    return team


def team_delete(*, team: Team) -> None:
    """Delete a team: its members and leads keep working without one; the days its members'
    team history held it are marked for a recount (pipeline.team_moves), after which the
    team's numbers are gone and its members' days count for no team."""
    with tenant_context(team.tenant_id):
        team.delete()


def _email(email: str) -> str:
    text_check(email, field="email", max_length=EMAIL_MAX, what="an e-mail address")
    email = email.strip()
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationFailed("Enter a valid e-mail address.", field="email") from exc
    if len(email) > EMAIL_MAX:
        raise ValidationFailed(
            f"An e-mail address has at most {EMAIL_MAX} characters.", field="email"
        )
    return email


def _role(role: str) -> str:
    if role not in Role.__members__.values():
        raise ValidationFailed(f"Unknown role {shown(role)}.", field="role")
    return role


def _display_name(name: str) -> str:
    text_check(name, field="displayName", max_length=DISPLAY_NAME_MAX, what="a display name")
    name = name.strip()
    if len(name) > DISPLAY_NAME_MAX:
        raise ValidationFailed(
            f"A display name has at most {DISPLAY_NAME_MAX} characters.", field="displayName"
        )
    return name


def _user_for(email: str, username: str | None) -> AbstractBaseUser:
    """The person an invitation names: the user of that username, else the one user with
    that e-mail, else a new user without a password (they sign in once one is set)."""
    users = get_user_model()
    if username is not None:
        username = username.strip()
        try:
            users.username_validator(username)
        except DjangoValidationError as exc:
            raise ValidationFailed(" ".join(exc.messages), field="username") from exc
        if not username or len(username) > USERNAME_MAX:
            raise ValidationFailed(
                f"A username has 1 to {USERNAME_MAX} characters.", field="username"
            )
        user = users.objects.filter(username=username).first()
        if user is not None:
            if user.email.lower() != email.lower():
                raise PublicError(
                    "That username belongs to someone with another e-mail.",
                    code=ErrorCode.CONFLICT,
                    field="username",
                )
            return user
        return users.objects.create_user(username=username, email=email)
    matches = list(users.objects.filter(email__iexact=email)[:2])
    if len(matches) > 1:
        raise ValidationFailed(
            "Several people share this e-mail: give the username too.", field="username"
        )
    if matches:
        return matches[0]
    username = email.lower()[:USERNAME_MAX]
    if users.objects.filter(username=username).exists():
        raise PublicError(
            f"The username {username!r} is taken: give another one.",
            code=ErrorCode.CONFLICT,
            field="username",
        )
    return users.objects.create_user(username=username, email=email)


def _grant_staff_to_admin(membership: Membership) -> None:
    user = membership.user
    if membership.role == Role.ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


@transaction.atomic
def member_add(
    *,
    tenant: Tenant,
    email: str,
    role: str = Role.REP,
    team: Team | None = None,
    display_name: str = "",
    username: str | None = None,
) -> Membership:
    """Add a person to the workspace by e-mail (an existing user, else a new one without a
    password). Partner records then refer to them by that e-mail or username."""
    email, role, display_name = _email(email), _role(role), _display_name(display_name)
    user = _user_for(email, username)
    with tenant_context(tenant):
        if team is not None and team.tenant_id != tenant.pk:
            raise NotFound("Team", field="teamId")
        if Membership.objects.filter(user=user).exists():
            raise PublicError(
                "This person is already a member: change them with updateMember.",
                code=ErrorCode.CONFLICT,
                field="email",
            )
        membership = Membership.objects.create(
            tenant=tenant, user=user, role=role, team=team, display_name=display_name
        )
    _grant_staff_to_admin(membership)
    return membership


@transaction.atomic
def member_update(
    *, membership: Membership, team_effective_from: dt.date | str | None = None, **changes: Any
) -> Membership:
    """Change a member's role, team, display name or active flag (only the given ones).

    A workspace keeps at least one active admin. A team move takes effect from the local day
    `team_effective_from` (today by default, never later; backdated moves are allowed) up to
    the member's next recorded change, and only those days' KPIs are recomputed
    (tenants.team_history).
    """
    unknown = set(changes) - {"role", "team", "display_name", "is_active"}
    if unknown:
        raise ValueError(f"Unknown member fields: {sorted(unknown)}")
    if team_effective_from is not None and "team" not in changes:
        raise ValidationFailed(
            "An effective day goes with a team move.", field=team_history.EFFECTIVE_FIELD
        )
    if "role" in changes:
        changes["role"] = _role(changes["role"])
    if "display_name" in changes:
        changes["display_name"] = _display_name(changes["display_name"])
    with tenant_context(membership.tenant_id):
        admins: set[int] = set()
        if {"role", "is_active"} & set(changes):
            # The active admins are locked first and in one order, so two admins demoting
            # each other queue (the second then sees it would leave none) and never deadlock.
            admins = set(
                Membership.objects.select_for_update()
                .filter(role=Role.ADMIN, is_active=True)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        locked = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=membership.pk)
        )
        if "team" in changes:
            team_history.member_team_move(
                membership=locked,
                team=changes.pop("team"),
                effective_from=team_effective_from,
            )
        for name, value in changes.items():
            setattr(locked, name, value)
        still_admin = locked.role == Role.ADMIN and locked.is_active
        if locked.pk in admins and not still_admin and not admins - {locked.pk}:
            raise ValidationFailed(
                "A workspace keeps at least one active admin.",
                field="role" if "role" in changes else "isActive",
            )
        if changes:
            locked.save(update_fields=list(changes))
    _grant_staff_to_admin(locked)
    return locked
