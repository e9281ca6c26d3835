"""Accepted requests (one record per request, whatever channel brought it)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from intake.repository.base import AlreadyRecorded, Store


class RequestRecords(Store):
    async def record_request(self, record: dict[str, Any], session: AsyncClientSession) -> None:
        """Store an accepted request; AlreadyRecorded when its id or idempotency key is
        taken (the transaction is then to be given up, not continued)."""
        try:
            await self._requests.insert_one(record, session=session)
        except DuplicateKeyError as exc:
            raise AlreadyRecorded(str(exc)) from exc

    async def request(self, request_id: str, session: AsyncClientSession | None = None
                      ) -> dict[str, Any] | None:
        return await self._requests.find_one({"_id": request_id}, session=session)

    async def request_by_key(self, key: str) -> dict[str, Any] | None:
        return await self._requests.find_one({"idempotency_key": key})

    async def requests_of_chat(self, chat_id: int) -> list[dict[str, Any]]:
        return [rq async for rq in self._requests.find({"requester.telegram_chat_id": chat_id})]
