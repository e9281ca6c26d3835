"""Who may use a service: exact domain / address matching of a sender's address."""

from __future__ import annotations

import re

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
