"""Inbound addresses: which mailbox address routes mail to which service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from intake.repository.base import Store


class InboundAddressRecords(Store):
    async def inbound_addresses(self) -> list[dict[str, Any]]:
        return [d async for d in self._inbound_addresses.find().sort("_id")]

    async def inbound_address(self, address: str) -> dict[str, Any] | None:
        return await self._inbound_addresses.find_one({"_id": address})

    async def save_inbound_address(self, address: str, service_id: str) -> dict[str, Any]:
        doc = {"_id": address, "service": service_id, "updated_at": datetime.now(UTC)}
        await self._inbound_addresses.replace_one({"_id": address}, doc, upsert=True)
        return doc

    async def delete_inbound_address(self, address: str) -> bool:
        return (await self._inbound_addresses.delete_one({"_id": address})).deleted_count == 1
