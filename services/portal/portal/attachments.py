"""Customer attachments are stored once, by intake; the portal forwards uploads to it."""

from __future__ import annotations

import httpx
from desk_contracts.events import AttachmentRef
from desk_contracts.signed_link import UPLOAD_HEADER, upload_token
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT
from prometheus_client import Counter
from starlette.datastructures import UploadFile

from portal.settings import PortalSettings

log = get_logger(__name__)

UPLOAD_FAILED = Counter("desk_portal_attachment_upload_failures_total",
                        "Attachments the portal could not hand to intake", ["reason"])


class UploadError(Exception):
    def __init__(self, key: str, name: str = "", **values: object):
        super().__init__(key)
        self.key = key
        self.name = name
        self.values = {"name": name, **values}


def form_too_large(settings: PortalSettings) -> UploadError:
    REJECTED_INPUT.labels("portal", "web", "form_too_large").inc()
    return UploadError("error.form_too_large",
                       limit=f"{settings.max_form_bytes / (1024 * 1024):g}")


def hopeless_body(content_length: str | None, settings: PortalSettings) -> bool:
    """A body far over the form limit is refused before it is read at all."""
    try:
        size = int(content_length or 0)
    except ValueError:
        return False
    return size > 2 * settings.max_form_bytes + 1024 * 1024


def chosen_files(values: list) -> list[UploadFile]:
    """Browsers send an empty part when no file was chosen; those are not attachments."""
    return [f for f in values if isinstance(f, UploadFile) and f.filename]


async def upload_all(settings: PortalSettings, files: list[UploadFile]) -> list[AttachmentRef]:
    """Hand a form's files to intake, or refuse them all: one too large, or all together
    over `max_form_bytes` (checked before anything is uploaded)."""
    max_bytes = settings.max_attachment_bytes
    total = 0
    for f in files:
        total += f.size if f.size is not None else len(await f.read())
        await f.seek(0)
    if total > settings.max_form_bytes:
        raise form_too_large(settings)
    refs: list[AttachmentRef] = []
    # intake knows the caller is the portal by its token; the upload token is what every
    # holder of the link secret (the workspace too) may present
    headers = {UPLOAD_HEADER: upload_token(settings.link_secret.encode())}
    if settings.intake_token:
        headers["Authorization"] = f"Bearer {settings.intake_token}"
    async with httpx.AsyncClient(base_url=settings.intake_url, timeout=60,
                                 headers=headers) as client:
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
