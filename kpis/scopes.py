"""The scopes a KPI is measured for: the whole tenant, a team, a rep or a lead source."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

# How leads without a source are labelled wherever sources are listed (funnels, leaderboards).
NO_SOURCE_LABEL = "(no source)"


class ScopeType(models.TextChoices):
    TENANT = "tenant", "Tenant"
    TEAM = "team", "Team"
    REP = "rep", "Rep"
    SOURCE = "source", "Source (channel)"


# TextChoices.values builds a new list on every call; scopes are made by the thousand.
_SCOPE_TYPES = frozenset(ScopeType.values)


@dataclass(frozen=True)
class KpiScope:
    """A scope as stored in snapshots: its type and key.

    The key is "" for the tenant, the Team pk for a team, the Membership pk for a rep (as
    text), and the lead's source string for a source (where "" is leads without a source).
    """

    type: str = ScopeType.TENANT
    key: str = ""

    def __post_init__(self) -> None:
        if self.type not in _SCOPE_TYPES:
            raise ValueError(f"Unknown scope type {self.type!r}.")
        if self.type == ScopeType.TENANT and self.key:
            raise ValueError("The tenant scope has no key.")

    @classmethod
    def tenant(cls) -> KpiScope:
        return cls(ScopeType.TENANT, "")

    @classmethod
    def team(cls, team_id: int) -> KpiScope:
        return cls(ScopeType.TEAM, str(team_id))

    @classmethod
    def rep(cls, membership_id: int) -> KpiScope:
        return cls(ScopeType.REP, str(membership_id))

    @classmethod
    def source(cls, source: str) -> KpiScope:
        return cls(ScopeType.SOURCE, source)
