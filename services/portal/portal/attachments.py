"""Customer attachments are stored once, by intake; the portal forwards uploads to it."""

from __future__ import annotations

import httpx
from desk_contracts.events import AttachmentRef
from desk_contracts.signed_link import UPLOAD_HEADER, upload_token
from desk_runtime.logging import get_logger
from prometheus_client import Counter
from starlette.datastructures import UploadFile

log = get_logger(__name__)

UPLOAD_FAILED = Counter("desk_portal_attachment_upload_failures_total",
                        "Attachments the portal could not hand to intake", ["reason"])


class UploadError(Exception):
    def __init__(self, key: str, name: str = ""):
        super().__init__(key)
        self.key = key
        self.name = name


def chosen_files(values: list) -> list[UploadFile]:
    """Browsers send an empty part when no file was chosen; those are not attachments."""
    return [f for f in values if isinstance(f, UploadFile) and f.filename]


async def upload_all(intake_url: str, files: list[UploadFile], max_bytes: int,
                     link_secret: str) -> list[AttachmentRef]:
    refs: list[AttachmentRef] = []
    headers = {UPLOAD_HEADER: upload_token(link_secret.encode())}
    async with httpx.AsyncClient(base_url=intake_url, timeout=60, headers=headers) as client:
        for f in files:
            if f.size is not None and f.size > max_bytes:
                UPLOAD_FAILED.labels("too_large").inc()
                raise UploadError("error.too_large", f.filename or "")
            data = await f.read()
            try:
                r = await client.post("/v1/attachments", files={
                    "file": (f.filename, data, f.content_type or "application/octet-stream")})
            except httpx.HTTPError as exc:
                UPLOAD_FAILED.labels("unreachable").inc()
                log.warning("portal.attachment_upload_failed", error=str(exc))
                raise UploadError("error.upload", f.filename or "") from exc
            if r.status_code == 413:
                UPLOAD_FAILED.labels("too_large").inc()
                raise UploadError("error.too_large", f.filename or "")
            if r.status_code != 201:
                UPLOAD_FAILED.labels(f"http_{r.status_code}").inc()
                log.warning("portal.attachment_upload_refused", status=r.status_code,
                            body=r.text[:300])
                raise UploadError("error.upload", f.filename or "")
            refs.append(AttachmentRef.model_validate(r.json()))
    return refs
