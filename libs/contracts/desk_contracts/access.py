"""Who may use a service: exact domain/address matching and the one rule every channel applies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

_ADDR = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=^_`{|}~-]+@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$")


def domain_of(address: str) -> str | None:
    """The domain of a single, syntactically valid addr-spec; None for anything else."""
    match = _ADDR.match(address.strip())
    return match.group(1).lower() if match else None


def address_allowed(address: str, allowed_domains: list[str], allowed_addresses: list[str]
                    ) -> bool:
    """Empty lists let everybody in; otherwise an exact address or exact domain must match.

    `*.acme.com` admits subdomains of acme.com; `acme.com.evil.io` and `evilacme.com`
    never match `acme.com`.
    """
    if not allowed_domains and not allowed_addresses:
        return True
    domain = domain_of(address)
    if domain is None:
        return False
    if address.strip().lower() in {a.strip().lower() for a in allowed_addresses}:
        return True
    for entry in allowed_domains:
        entry = entry.strip().lower()
        if entry.startswith("*."):
            base = entry[2:]
            if domain == base or domain.endswith("." + base):
                return True
        elif domain == entry:
            return True
    return False


class AddressSet(BaseModel):
    """A set of people by exact domain (or `*.domain`) and exact address, e.g. a group.

    Unlike a service's own lists, an empty set holds nobody (a group nobody is in).
    """

    model_config = ConfigDict(frozen=True)

    domains: tuple[str, ...] = Field((), max_length=1000)
    addresses: tuple[str, ...] = Field((), max_length=10_000)

    def contains(self, address: str) -> bool:
        if not self.domains and not self.addresses:
            return False
        return address_allowed(address, list(self.domains), list(self.addresses))


class _Rule(Protocol):
    domains: tuple[str, ...]
    addresses: tuple[str, ...]
    groups: tuple[str, ...]


def is_restricted(rule: _Rule) -> bool:
    """A service whose rule names anybody is closed to everybody else."""
    return bool(rule.domains or rule.addresses or rule.groups)


def rule_admits(address: str | None, rule: _Rule, groups: Mapping[str, AddressSet]) -> bool:
    """The one access check every channel applies (portal, web API, e-mail, Telegram).

    `address` is who is asking as far as the channel can establish it; None when it
    cannot (a Telegram user, an unauthenticated API caller): then only an unrestricted
    service admits them. `groups` is the customer groups' membership (owned by the portal,
    copied by intake from `customer.groups_changed`).
    """
    if not is_restricted(rule):
        return True
    if address is None or domain_of(address) is None:
        return False
    if (rule.domains or rule.addresses) and address_allowed(
            address, list(rule.domains), list(rule.addresses)):
        return True
    return any(name in groups and groups[name].contains(address) for name in rule.groups)
