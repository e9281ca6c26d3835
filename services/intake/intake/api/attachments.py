"""Attachments API: upload once (`POST /v1/attachments`), download by signed link."""

from __future__ import annotations

from urllib.parse import quote

from desk_contracts.signed_link import UPLOAD_HEADER, verify_link, verify_upload_token
from desk_runtime.http import Forbidden, Invalid, NotFound, TooLarge, Unauthorized
from desk_runtime.metrics import REJECTED_INPUT
from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from intake.access import portal_caller
from intake.attachments import AttachmentStore

router = APIRouter(prefix="/v1", tags=["attachments"])


def store_of(request: Request) -> AttachmentStore:
    return request.app.state.attachments


@router.post("/attachments", status_code=201)
async def upload(request: Request, file: UploadFile | None = None) -> JSONResponse:
    """Store one file (multipart field `file`); answers the AttachmentRef with a signed url.

    Only a service holding the link secret may upload: it presents a short-lived
    `X-Desk-Upload-Token` (see `desk_contracts.signed_link.upload_token`), or the portal
    its own credential (`INTAKE_PORTAL_TOKEN`).
    """
    store = store_of(request)
    token = request.headers.get(UPLOAD_HEADER, "")
    if not portal_caller(request) and (
            not token or not verify_upload_token(token, store.link_secret.encode())):
        REJECTED_INPUT.labels("intake", "attachments", "no_upload_token").inc()
        raise Unauthorized(f"uploads need a valid {UPLOAD_HEADER} header")
    if file is None:
        REJECTED_INPUT.labels("intake", "attachments", "no_file").inc()
        raise Invalid("send the file as multipart form field 'file'",
                      details={"fields": {"file": "is required"}})
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(1024 * 1024):
        size += len(chunk)
        if size > store.max_bytes:
            REJECTED_INPUT.labels("intake", "attachments", "too_large").inc()
            raise TooLarge(f"the file is larger than {store.max_bytes} bytes")
        chunks.append(chunk)
    ref = await store.store(b"".join(chunks), file.filename, file.content_type,
                            source="upload")
    return JSONResponse(ref.model_dump(mode="json"), status_code=201)


@router.get("/attachments/{attachment_id}")
async def download(attachment_id: str, request: Request, t: str = "") -> Response:
    store = store_of(request)
    if not t or not verify_link("attachment", attachment_id, t, store.link_secret.encode()):
        REJECTED_INPUT.labels("intake", "attachments", "bad_link").inc()
        raise Forbidden("this link is not valid (or has expired)")
    found = await store.load(attachment_id)
    if found is None:
        raise NotFound("no such attachment")
    doc, data = found
    ctype = doc["content_type"]
    # Active content (HTML, SVG) is never rendered from our origin.
    inline = ctype.startswith("image/") and ctype != "image/svg+xml" or ctype == "application/pdf"
    disposition = "inline" if inline else "attachment"
    return Response(data, media_type=ctype if inline or ctype.startswith("text/plain")
                    else "application/octet-stream" if ctype in ("text/html", "image/svg+xml")
                    else ctype,
                    headers={"Content-Disposition":
                             f"{disposition}; filename*=UTF-8''{quote(doc['filename'])}",
                             "X-Content-Type-Options": "nosniff",
                             "Content-Security-Policy": "sandbox",
                             "Cache-Control": "private, max-age=3600"})
