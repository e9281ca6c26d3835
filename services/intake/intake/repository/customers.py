"""Intake's copy of the customer groups the portal owns (read by services' access rules)."""

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

    async def customer_groups_revision(self) -> int:
        doc = await self._customer_groups.find_one({"_id": "groups"}, {"revision": 1})
        return (doc or {}).get("revision", 0)

    async def replace_customer_groups(self, groups: dict[str, AddressSet], revision: int,
                                      session: AsyncClientSession) -> None:
        """Keep the newest revision only (events may arrive out of order after a retry)."""
        current = await self._customer_groups.find_one({"_id": "groups"}, {"revision": 1},
                                                       session=session)
        if current is not None and current["revision"] >= revision:
            return
        await self._customer_groups.replace_one(
            {"_id": "groups"},
            {"_id": "groups", "revision": revision,
             "groups": {k: v.model_dump(mode="json") for k, v in groups.items()}},
            upsert=True, session=session)
        config_cache(self._db.name).forget(("customer_groups",))
