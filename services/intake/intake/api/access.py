"""Admin view of intake's copy of the customer groups and organisations (changed on the
portal, not here)."""

from __future__ import annotations

from desk_runtime.http import require_admin
from fastapi import APIRouter, Depends, Request

from intake.repository import IntakeRepository

router = APIRouter(prefix="/v1/access", tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/groups")
async def customer_groups(request: Request) -> dict:
    """The groups services' access rules may name, as last heard from the portal."""
    repo = IntakeRepository(request.app.state.runtime.db)
    groups = await repo.customer_groups()
    organisations = await repo.customer_organisations()
    return {"revision": await repo.customer_groups_revision(),
            "groups": {k: v.model_dump(mode="json") for k, v in groups.items()},
            # None: no portal sent them yet (INTAKE_ORGANISATIONS applies)
            "organisations": None if organisations is None else {
                k: v.model_dump(mode="json") for k, v in organisations.items()}}
