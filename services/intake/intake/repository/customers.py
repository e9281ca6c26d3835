"""Intake's copy of the customer groups (read by services' access rules) and of the
customers' organisations (whose members may reply on each other's requests), both owned
by the portal."""

from __future__ import annotations

from desk_contracts.access import AddressSet
from desk_runtime.config_cache import config_cache
from pymongo.asynchronous.client_session import AsyncClientSession

from intake.repository.base import Store


class CustomerGroupRecords(Store):
    async def customer_groups(self) -> dict[str, AddressSet]:
        """Intake's copy of the portal's customer groups (empty until the first event)."""
        async def load() -> dict[str, AddressSet]:
            doc = await self._customer_groups.find_one({"_id": "groups"})
            return {k: AddressSet.model_validate(v)
                    for k, v in ((doc or {}).get("groups") or {}).items()}

        # read for every request; changed by the portal's admin now and then
        return await config_cache(self._db.name).get(("customer_groups",), load, copy=True)

    async def customer_organisations(self) -> dict[str, AddressSet] | None:
        """The portal's organisations as last heard; None until a portal sent them."""
        async def load() -> dict[str, dict] | None:
            doc = await self._customer_groups.find_one({"_id": "groups"}, {"organisations": 1})
            found = (doc or {}).get("organisations")
            return {"orgs": found}  # cached even when None (absent is an answer too)

        cached = await config_cache(self._db.name).get(("customer_organisations",), load)
        found = cached["orgs"]
        return None if found is None else {k: AddressSet.model_validate(v)
                                           for k, v in found.items()}

    async def customer_groups_revision(self) -> int:
        doc = await self._customer_groups.find_one({"_id": "groups"}, {"revision": 1})
        return (doc or {}).get("revision", 0)

    async def replace_customer_groups(self, groups: dict[str, AddressSet], revision: int,
                                      session: AsyncClientSession,
                                      organisations: dict[str, AddressSet] | None = None
                                      ) -> None:
        """Keep the newest revision only (events may arrive out of order after a retry)."""
        current = await self._customer_groups.find_one({"_id": "groups"}, {"revision": 1},
                                                       session=session)
        if current is not None and current["revision"] >= revision:
            return
        doc = {"_id": "groups", "revision": revision,
               "groups": {k: v.model_dump(mode="json") for k, v in groups.items()}}
        if organisations is not None:
            doc["organisations"] = {k: v.model_dump(mode="json")
                                    for k, v in organisations.items()}
        await self._customer_groups.replace_one({"_id": "groups"}, doc, upsert=True,
                                                session=session)
        config_cache(self._db.name).forget(("customer_groups",))
        config_cache(self._db.name).forget(("customer_organisations",))
