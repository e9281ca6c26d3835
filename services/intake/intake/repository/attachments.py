"""Attachment bytes (content-addressed chunks, stored once) and the references to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import Binary
from pymongo.errors import DuplicateKeyError

from intake.repository.base import Store


class AttachmentRecords(Store):
    async def ensure_attachment_indexes(self) -> None:
        await self._blob_chunks.create_index([("sha", 1), ("n", 1)])

    async def blob_complete(self, sha: str) -> bool:
        return await self._blobs.find_one({"_id": sha, "complete": True}, {"_id": 1}) is not None

    async def put_blob_chunk(self, sha: str, n: int, data: bytes) -> None:
        await self._blob_chunks.replace_one(
            {"_id": f"{sha}:{n}"}, {"_id": f"{sha}:{n}", "sha": sha, "n": n, "data": Binary(data)},
            upsert=True)

    async def complete_blob(self, sha: str, size: int, at: datetime) -> None:
        """Marked only after every chunk is written: a crash leaves no half blob."""
        await self._blobs.update_one(
            {"_id": sha}, {"$set": {"size": size, "complete": True},
                           "$setOnInsert": {"created_at": at}}, upsert=True)

    async def blob(self, sha: str) -> bytes | None:
        meta = await self._blobs.find_one({"_id": sha, "complete": True})
        if meta is None:
            return None
        parts = [bytes(c["data"])
                 async for c in self._blob_chunks.find({"sha": sha}).sort("n", 1)]
        return b"".join(parts)

    async def record_attachment(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a reference; a retried store with the same id gets the stored one back."""
        try:
            await self._attachments.insert_one(doc)
        except DuplicateKeyError:
            return await self._attachments.find_one({"_id": doc["_id"]})
        return doc

    async def attachment(self, attachment_id: str) -> dict[str, Any] | None:
        return await self._attachments.find_one({"_id": attachment_id})
