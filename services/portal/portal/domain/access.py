"""Who may sign in, which services a customer sees, and whose requests they may read.

Matching is exact (see `desk_contracts.access`): `acme.com.evil.io` is not `acme.com`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from desk_contracts.access import AddressSet, address_allowed, domain_of, rule_admits
from desk_contracts.catalog import ServiceDefinition

from portal.settings import AddressRule, PortalSettings


@dataclass(frozen=True)
class AccessConfig:
    """The stored access configuration: who may sign in, and the customer groups.

    `allow` empty = everybody may sign in. Kept in the portal's store, changed by the
    admin API; the settings only seed it at the first start.
    """

    allow: AddressSet = AddressSet()
    groups: Mapping[str, AddressSet] = field(default_factory=dict)
    revision: int = 0

    @classmethod
    def seed(cls, settings: PortalSettings) -> AccessConfig:
        def as_set(rule: AddressRule) -> AddressSet:
            return AddressSet(domains=tuple(rule.domains), addresses=tuple(rule.addresses))
        return cls(allow=as_set(settings.access),
                   groups={name: as_set(rule) for name, rule in settings.groups.items()},
                   revision=1)


@dataclass(frozen=True)
class AccessChange:
    """One admin edit of the access configuration: a new sign-in allowlist, or one customer
    group created/replaced (`members` given) or deleted (`members` None)."""

    allow: AddressSet | None = None
    group: str | None = None
    members: AddressSet | None = None

    @property
    def touches_groups(self) -> bool:
        """Intake keeps a copy of the groups: such a change is published with it."""
        return self.group is not None


def normalise_email(raw: str) -> str | None:
    """The address lower-cased, or None when it is not one valid addr-spec."""
    address = raw.strip().lower()
    if len(address) > 254 or domain_of(address) is None:
        return None
    return address


def _in_rule(email: str, rule: AddressRule) -> bool:
    if not rule.domains and not rule.addresses:
        return False
    return address_allowed(email, rule.domains, rule.addresses)


def may_sign_in(email: str, config: AccessConfig) -> bool:
    return address_allowed(email, list(config.allow.domains), list(config.allow.addresses))


def groups_of(email: str, config: AccessConfig) -> set[str]:
    return {name for name, members in config.groups.items() if members.contains(email)}


def organisation_of(email: str, settings: PortalSettings) -> tuple[str, AddressRule] | None:
    for name, rule in settings.organisations.items():
        if _in_rule(email, rule):
            return name, rule
    return None


def may_use_service(email: str, service: ServiceDefinition, config: AccessConfig) -> bool:
    """A service's rule: empty = everybody; otherwise its domains, addresses or groups
    (the same check intake applies on e-mail, Telegram and its web API)."""
    return service.active and rule_admits(email, service.access, config.groups)


def requests_filter(email: str, settings: PortalSettings) -> dict:
    """The Mongo filter for the requests a customer may see: theirs, or their organisation's."""
    org = organisation_of(email, settings)
    if org is None:
        return {"requester_email": email}
    name, rule = org
    alternatives: list[dict] = [{"requester_email": email}, {"organisation": name}]
    exact = [d.lower() for d in rule.domains if not d.startswith("*.")]
    if exact:
        alternatives.append({"requester_domain": {"$in": exact}})
    if rule.addresses:
        alternatives.append({"requester_email": {"$in": [a.lower() for a in rule.addresses]}})
    return {"$or": alternatives}


def may_see_request(email: str, request: dict, settings: PortalSettings) -> bool:
    """The same rule as `requests_filter`, for one document already loaded."""
    owner = request.get("requester_email")
    if owner == email:
        return True
    org = organisation_of(email, settings)
    if org is None:
        return False
    name, rule = org
    if request.get("organisation") == name:
        return True
    return bool(owner) and _in_rule(owner, rule)
