"""The portal's admin API: who may sign in, the customer groups and the customers'
organisations, changed without a restart."""

from __future__ import annotations

import re

from desk_contracts.access import AddressSet
from desk_runtime.http import Conflict, Invalid, NotFound, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from portal import commands
from portal.api.web import access_config_of, portal_of
from portal.domain.access import AccessChange, Organisation, normalise_email

router = APIRouter(prefix="/v1/access", tags=["admin"], dependencies=[Depends(require_admin)])

GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # no dots: a key in the store
DOMAIN = re.compile(r"^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$")


class OrganisationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="shown to its members")
    domains: tuple[str, ...] = Field((), max_length=1000)
    addresses: tuple[str, ...] = Field((), max_length=10_000)


class OrganisationOut(OrganisationIn):
    pass


class AccessOut(BaseModel):
    revision: int
    allow: AddressSet
    groups: dict[str, AddressSet]
    organisations: dict[str, OrganisationOut] = {}


async def _current(request: Request) -> dict:
    doc = await portal_of(request).repo.access_doc()
    if doc is None:  # seeded at start-up; only a broken store gets here
        raise NotFound("no access configuration stored yet")
    return doc


def _out(doc: dict) -> AccessOut:
    config = access_config_of(doc)
    return AccessOut(revision=config.revision, allow=config.allow, groups=dict(config.groups),
                     organisations={k: OrganisationOut(**v.as_doc())
                                    for k, v in config.organisations.items()})


async def _change(request: Request, change: AccessChange) -> AccessOut:
    portal = portal_of(request)
    doc = await _current(request)
    try:
        doc = await commands.change_access(portal.runtime, revision=doc["revision"],
                                           change=change,
                                           correlation_id=request.state.correlation_id)
    except commands.AccessChangedMeanwhile:
        raise Conflict("the configuration changed meanwhile; read it and try again") from None
    portal.forget_access()  # this replica shows the change at once; others within a second
    return _out(doc)


@router.get("", response_model=AccessOut)
async def read_access(request: Request) -> AccessOut:
    """The sign-in allowlist (empty = everybody) and every customer group."""
    return _out(await _current(request))


@router.put("/allow", response_model=AccessOut)
async def set_allowlist(body: AddressSet, request: Request) -> AccessOut:
    """Who may ask for a sign-in code (exact domains, `*.domain`, exact addresses)."""
    return await _change(request, AccessChange(allow=body))


@router.put("/groups/{name}", response_model=AccessOut)
async def set_group(name: str, body: AddressSet, request: Request) -> AccessOut:
    """Create or replace a customer group; intake learns it from `customer.groups_changed`."""
    if not GROUP_NAME.match(name):
        raise Invalid("a group name is 1-64 of a-z, 0-9, _ - (starting with a letter or digit)")
    return await _change(request, AccessChange(group=name, members=body))


@router.delete("/groups/{name}", response_model=AccessOut)
async def delete_group(name: str, request: Request) -> AccessOut:
    if name not in ((await _current(request)).get("groups") or {}):
        raise NotFound(f"no group {name!r}")
    return await _change(request, AccessChange(group=name))


def _members(body: OrganisationIn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The organisation's domains and addresses, lower-cased; refused per field when one
    is not a domain (or `*.domain`) or not an address."""
    bad: dict[str, str] = {}
    domains = tuple(dict.fromkeys(d.strip().lower() for d in body.domains if d.strip()))
    addresses = tuple(dict.fromkeys(a.strip().lower() for a in body.addresses if a.strip()))
    for d in domains:
        if not DOMAIN.match(d.removeprefix("*.")):
            bad["domains"] = f"{d!r} is not a domain"
    for a in addresses:
        if normalise_email(a) is None:
            bad["addresses"] = f"{a!r} is not an e-mail address"
    if not domains and not addresses and not bad:
        bad["domains"] = "an organisation needs a domain or an address"
    if bad:
        REJECTED_INPUT.labels("portal", "admin", "invalid_organisation").inc()
        raise Invalid("; ".join(f"{k}: {v}" for k, v in bad.items()), details={"fields": bad})
    return domains, addresses


@router.put("/organisations/{org_id}", response_model=AccessOut)
async def set_organisation(org_id: str, body: OrganisationIn, request: Request) -> AccessOut:
    """Create or replace an organisation: its members (by domain or address) see each
    other's requests on the portal (within a second on every replica)."""
    if not GROUP_NAME.match(org_id):
        raise Invalid("an organisation id is 1-64 of a-z, 0-9, _ -",
                      details={"fields": {"id": "1-64 of a-z, 0-9, _ -"}})
    domains, addresses = _members(body)
    org = Organisation(name=body.name.strip(), domains=domains, addresses=addresses)
    return await _change(request, AccessChange(organisation_id=org_id, organisation=org))


@router.delete("/organisations/{org_id}", response_model=AccessOut)
async def delete_organisation(org_id: str, request: Request) -> AccessOut:
    if org_id not in ((await _current(request)).get("organisations") or {}):
        raise NotFound(f"no organisation {org_id!r}")
    return await _change(request, AccessChange(organisation_id=org_id))
