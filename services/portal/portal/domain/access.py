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
class Organisation:
    """Customers who see each other's requests on the portal: its members by exact domain
    (or `*.domain`) and exact address, and the name the portal shows them."""

    name: str
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    def as_doc(self) -> dict:
        return {"name": self.name, "domains": list(self.domains),
                "addresses": list(self.addresses)}

    @classmethod
    def from_doc(cls, org_id: str, doc: Mapping) -> Organisation:
        return cls(name=doc.get("name") or org_id, domains=tuple(doc.get("domains") or ()),
                   addresses=tuple(doc.get("addresses") or ()))


@dataclass(frozen=True)
class AccessConfig:
    """The stored access configuration: who may sign in, the customer groups, and the
    customers' organisations.

    `allow` empty = everybody may sign in. Kept in the portal's store, changed by the
    admin API; the settings only seed it at the first start.
    """

    allow: AddressSet = AddressSet()
    groups: Mapping[str, AddressSet] = field(default_factory=dict)
    revision: int = 0
    organisations: Mapping[str, Organisation] = field(default_factory=dict)

    @classmethod
    def seed(cls, settings: PortalSettings) -> AccessConfig:
        def as_set(rule: AddressRule) -> AddressSet:
            return AddressSet(domains=tuple(rule.domains), addresses=tuple(rule.addresses))
        return cls(allow=as_set(settings.access),
                   groups={name: as_set(rule) for name, rule in settings.groups.items()},
                   revision=1, organisations=seed_organisations(settings))


def seed_organisations(settings: PortalSettings) -> dict[str, Organisation]:
    return {org_id: Organisation(org_id, tuple(rule.domains), tuple(rule.addresses))
            for org_id, rule in settings.organisations.items()}


@dataclass(frozen=True)
class AccessChange:
    """One admin edit of the access configuration: a new sign-in allowlist, one customer
    group created/replaced (`members` given) or deleted (`members` None), or one
    organisation likewise."""

    allow: AddressSet | None = None
    group: str | None = None
    members: AddressSet | None = None
    # one organisation created/replaced (`organisation` given) or deleted (None)
    organisation_id: str | None = None
    organisation: Organisation | None = None

    @property
    def touches_groups(self) -> bool:
        """Intake keeps a copy of the groups and organisations: such a change is published
        with them."""
        return self.group is not None or self.organisation_id is not None


def normalise_email(raw: str) -> str | None:
    """The address lower-cased, or None when it is not one valid addr-spec."""
    address = raw.strip().lower()
    if len(address) > 254 or domain_of(address) is None:
        return None
    return address


def _in_rule(email: str, rule: Organisation) -> bool:
    if not rule.domains and not rule.addresses:
        return False
    return address_allowed(email, list(rule.domains), list(rule.addresses))


def may_sign_in(email: str, config: AccessConfig) -> bool:
    return address_allowed(email, list(config.allow.domains), list(config.allow.addresses))


def groups_of(email: str, config: AccessConfig) -> set[str]:
    return {name for name, members in config.groups.items() if members.contains(email)}


def organisation_of(email: str, config: AccessConfig) -> tuple[str, Organisation] | None:
    for org_id, org in sorted(config.organisations.items()):
        if _in_rule(email, org):
            return org_id, org
    return None


def may_use_service(email: str, service: ServiceDefinition, config: AccessConfig) -> bool:
    """A service's rule: empty = everybody; otherwise its domains, addresses or groups
    (the same check intake applies on e-mail, Telegram and its web API)."""
    return service.active and rule_admits(email, service.access, config.groups)


def requests_filters(email: str, config: AccessConfig) -> list[dict]:
    """The Mongo filters whose union is the requests a customer may see: theirs, or their
    organisation's. Alternatives, not one `$or`: each is served by an index, where an `$or`
    makes the embedded store scan every request (tests/test_store_queries.py)."""
    org = organisation_of(email, config)
    if org is None:
        return [{"requester_email": email}]
    name, rule = org
    alternatives: list[dict] = [{"requester_email": email}, {"organisation": name}]
    exact = [d.lower() for d in rule.domains if not d.startswith("*.")]
    if exact:
        alternatives.append({"requester_domain": {"$in": exact}})
    if rule.addresses:
        alternatives.append({"requester_email": {"$in": [a.lower() for a in rule.addresses]}})
    return alternatives


def may_see_request(email: str, request: dict, config: AccessConfig) -> bool:
    """The same rule as `requests_filters`, for one document already loaded."""
    owner = request.get("requester_email")
    if owner == email:
        return True
    org = organisation_of(email, config)
    if org is None:
        return False
    name, rule = org
    if request.get("organisation") == name:
        return True
    return bool(owner) and _in_rule(owner, rule)
