"""A service's access rule on intake's channels: who is asking, and may they use it?

The rule is `desk_contracts.access.rule_admits`, the very check the portal applies; the
customer groups come from intake's copy of the portal's (`customer.groups_changed`).
What differs per channel is how well it knows who is asking:

* e-mail: the sender's address (`From`; how far it is trusted is the mail pipeline's job);
* web API with the portal's credential (`INTAKE_PORTAL_TOKEN`): the requester address the
  portal vouches for (it signed the customer in);
* web API without it, Telegram: nobody in particular, so only unrestricted services.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from desk_contracts.access import rule_admits
from desk_contracts.catalog import ServiceDefinition
from fastapi import Request

from intake.repository import IntakeRepository


@dataclass(frozen=True)
class Refusal:
    reason: str   # a stable code: quarantine reason, API `details.reason`, metric label
    message: str  # what the caller (or the admin reading the quarantine) is told


async def refusal(repo: IntakeRepository, service: ServiceDefinition, address: str | None,
                  ) -> Refusal | None:
    """None when `address` (None = unknown) may use `service`, else why not."""
    if rule_admits(address, service.access, await repo.customer_groups()):
        return None
    if address is None:
        return Refusal("identity_required",
                       f"service {service.id!r} is only for some customers, and this channel "
                       "cannot tell who is asking (sign in to the portal, or write by e-mail)")
    return Refusal("sender_not_allowed", f"{address} may not use service {service.id!r}")


def portal_caller(request: Request) -> bool:
    """The caller presented the portal's credential (compared in constant time; an unset
    setting trusts nobody)."""
    expected = request.app.state.settings.portal_token
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
        presented.encode(), expected.encode())
