"""Who may sign in, which services a customer sees, and whose requests they may read.

Matching is exact (see `desk_contracts.access`): `acme.com.evil.io` is not `acme.com`.
"""

from __future__ import annotations

from desk_contracts.access import address_allowed, domain_of
from desk_contracts.catalog import ServiceDefinition

from portal.settings import AddressRule, PortalSettings


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


def may_sign_in(email: str, settings: PortalSettings) -> bool:
    return address_allowed(email, settings.access.domains, settings.access.addresses)


def groups_of(email: str, settings: PortalSettings) -> set[str]:
    return {name for name, rule in settings.groups.items() if _in_rule(email, rule)}


def organisation_of(email: str, settings: PortalSettings) -> tuple[str, AddressRule] | None:
    for name, rule in settings.organisations.items():
        if _in_rule(email, rule):
            return name, rule
    return None


def may_use_service(email: str, service: ServiceDefinition, settings: PortalSettings) -> bool:
    """A service's rule: empty = everybody; otherwise its domains, addresses or groups."""
    if not service.active:
        return False
    rule = service.access
    if not rule.domains and not rule.addresses and not rule.groups:
        return True
    if (rule.domains or rule.addresses) and address_allowed(
            email, list(rule.domains), list(rule.addresses)):
        return True
    return bool(set(rule.groups) & groups_of(email, settings))


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
