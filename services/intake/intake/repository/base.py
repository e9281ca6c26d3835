"""The collections intake keeps, reached by attribute; every concern's records build on it."""

from __future__ import annotations

from desk_runtime.catalog_copy import CatalogCopy
from pymongo.asynchronous.database import AsyncDatabase


class AlreadyRecorded(Exception):
    """A record with this identity (id, idempotency key, dedupe key) is already stored."""


class Store:
    def __init__(self, db: AsyncDatabase):
        self._db = db
        self._catalog = CatalogCopy(db)
        self._requests = db.requests
        self._threads = db.threads
        self._inbound = db.inbound_mail
        self._quarantine = db.quarantine
        self._mailboxes = db.mailboxes
        self._inbound_addresses = db.inbound_addresses
        self._dialogs = db.telegram_dialogs
        self._telegram_state = db.telegram_state
        self._telegram_updates = db.telegram_updates
        self._telegram_outbox = db.telegram_outbox
        self._customer_groups = db.customer_groups
        self._blobs = db.blobs
        self._blob_chunks = db.blob_chunks
        self._attachments = db.attachments


__all__ = ["AlreadyRecorded", "Store"]
