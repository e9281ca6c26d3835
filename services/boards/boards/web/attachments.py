"""Agents attach files to replies: the page uploads here, boards hands the file to intake.

Files are stored once, by intake (`POST {intake}/v1/attachments`, with a short-lived
upload token signed with the secret intake and boards share, as the portal does); the
answer is an `AttachmentRef` the page then sends with the comment. The page cannot call
intake itself: it only talks to its own origin (CSRF token, CSP `connect-src 'self'`).
"""

from __future__ import annotations

import httpx
from desk_contracts.events import AttachmentRef
from desk_contracts.signed_link import UPLOAD_HEADER, upload_token
from desk_runtime.http import DomainError, Invalid, TooLarge
from desk_runtime.logging import get_logger
from fastapi import APIRouter, Depends, File, Request, UploadFile

from boards.auth import Agent, current_agent
from boards.web.metrics import UPLOADS

log = get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["attachments"])


class Unavailable(DomainError):
    status_code = 503
    code = "attachments_unavailable"


@router.post("/attachments", status_code=201, response_model=AttachmentRef)
async def upload(request: Request, file: UploadFile = File(...),
                 agent: Agent = Depends(current_agent)) -> dict:
    """Store one file with intake; returns the reference to send with a comment."""
    settings = request.app.state.settings
    if not settings.link_secret:
        UPLOADS.labels("disabled").inc()
        raise Unavailable("attachments are off: BOARDS_LINK_SECRET is not set")
    if not file.filename:
        raise Invalid("choose a file")
    data = await file.read(settings.max_attachment_bytes + 1)
    if len(data) > settings.max_attachment_bytes:
        UPLOADS.labels("too_large").inc()
        raise TooLarge(f"{file.filename} is larger than {settings.max_attachment_bytes} bytes")
    headers = {UPLOAD_HEADER: upload_token(settings.link_secret.encode())}
    try:
        async with httpx.AsyncClient(base_url=settings.intake_url, timeout=60) as client:
            r = await client.post("/v1/attachments", headers=headers, files={
                "file": (file.filename, data, file.content_type or "application/octet-stream")})
    except httpx.HTTPError as exc:
        UPLOADS.labels("unreachable").inc()
        log.warning("web.attachment_upload_failed", error=str(exc), agent=agent.id)
        raise Unavailable("the attachment store (intake) cannot be reached; try again") from None
    if r.status_code == 413:
        UPLOADS.labels("too_large").inc()
        raise TooLarge(f"{file.filename} is too large")
    if r.status_code != 201:
        UPLOADS.labels(f"http_{r.status_code}").inc()
        log.warning("web.attachment_upload_refused", status=r.status_code, body=r.text[:300])
        raise Unavailable(f"the attachment store refused the file ({r.status_code})")
    UPLOADS.labels("stored").inc()
    return AttachmentRef.model_validate(r.json()).model_dump(mode="json")
