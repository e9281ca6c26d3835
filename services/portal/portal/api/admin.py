"""The portal's admin API: who may sign in and the customer groups, changed without a restart."""

from __future__ import annotations

import re

from desk_contracts.access import AddressSet
from desk_runtime.http import Conflict, Invalid, NotFound, require_admin
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from portal import commands
from portal.api.web import access_config_of, portal_of
from portal.domain.access import AccessChange

router = APIRouter(prefix="/v1/access", tags=["admin"], dependencies=[Depends(require_admin)])

GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # no dots: a key in the store


class AccessOut(BaseModel):
    revision: int
    allow: AddressSet
    groups: dict[str, AddressSet]


async def _current(request: Request) -> dict:
    doc = await portal_of(request).repo.access_doc()
    if doc is None:  # seeded at start-up; only a broken store gets here
        raise NotFound("no access configuration stored yet")
    return doc


def _out(doc: dict) -> AccessOut:
    config = access_config_of(doc)
    return AccessOut(revision=config.revision, allow=config.allow, groups=dict(config.groups))


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
