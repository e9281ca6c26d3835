"""The attachment store: every file a customer sends is stored once, addressed by its sha256.

Bytes live in fixed-size chunks (a Mongo document holds at most 16 MiB) keyed by the
content hash, so the same file mailed ten times is kept once; each upload gets its own
reference (id, filename, sniffed type) pointing at those bytes. Raw inbound mail uses the
same blob store, so an accepted message is on disk before SMTP answers 250.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import uuid
from datetime import UTC, datetime, timedelta

from desk_contracts.events import AttachmentRef
from desk_contracts.signed_link import sign_link

from intake.repository import IntakeRepository

CHUNK = 4 * 1024 * 1024
LINK_VALIDITY = timedelta(days=365)

# Signatures of the formats customers actually send; checked before any declared type,
# so an executable renamed to .pdf is not served as a PDF.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"RIFF", 0, "image/webp"),  # refined below (WEBP at offset 8)
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"ftyp", 4, "video/mp4"),
)
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_OLE = {".doc": "application/msword", ".xls": "application/vnd.ms-excel",
        ".ppt": "application/vnd.ms-powerpoint", ".msg": "application/vnd.ms-outlook"}


def sniff_content_type(data: bytes, filename: str = "") -> str:
    """The content type the bytes really have; the filename only refines look-alike formats."""
    head = data[:512]
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    for magic, offset, ctype in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if ctype == "image/webp" and head[8:12] != b"WEBP":
                break
            if ctype == "application/x-ole-storage":
                return _OLE.get(ext, ctype)
            return ctype
    if head.startswith(b"PK\x03\x04"):
        for marker, ctype in _OOXML.items():
            if marker.encode() in data[:65536]:
                return ctype
        return "application/zip"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg"):
        return "image/svg+xml" if b"<svg" in data[:2048].lower() else "application/xml"
    try:
        data[:65536].decode("utf-8")
        is_text = b"\x00" not in head
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the sample's end is still text
        is_text = exc.start >= min(len(data), 65536) - 3 and b"\x00" not in head
    if is_text:
        guessed = mimetypes.guess_type(filename)[0] or ""
        if guessed in ("text/csv", "application/json", "text/markdown", "text/calendar",
                       "message/rfc822"):
            return guessed
        return "text/plain"
    return "application/octet-stream"


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A filename without paths or control characters (it ends up in headers and on disks)."""
    name = re.split(r"[/\\]", (name or "").strip())[-1]  # never a path
    name = _UNSAFE.sub("_", name).strip(". _")
    return name[:200] or fallback


class AttachmentTooLarge(Exception):
    pass


class BlobStore:
    """Content-addressed bytes, kept in chunks (intake.repository.attachments)."""

    def __init__(self, repo: IntakeRepository):
        self.repo = repo

    async def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if await self.repo.blob_complete(sha):
            return sha
        for n, start in enumerate(range(0, max(len(data), 1), CHUNK)):
            await self.repo.put_blob_chunk(sha, n, data[start:start + CHUNK])
        # Marked complete only after every chunk is written: a crash leaves no half blob.
        await self.repo.complete_blob(sha, len(data), datetime.now(UTC))
        return sha

    async def get(self, sha: str) -> bytes | None:
        return await self.repo.blob(sha)


class AttachmentStore:
    def __init__(self, repo: IntakeRepository, *, link_secret: str, public_url: str,
                 max_bytes: int):
        self.repo = repo
        self.blobs = BlobStore(repo)
        self.link_secret = link_secret
        self.public_url = public_url.rstrip("/")
        self.max_bytes = max_bytes

    def url_for(self, attachment_id: str) -> str:
        token = sign_link("attachment", attachment_id, self.link_secret.encode(),
                          datetime.now(UTC) + LINK_VALIDITY)
        return f"{self.public_url}/v1/attachments/{attachment_id}?t={token}"

    async def store(self, data: bytes, filename: str | None, declared_type: str | None = None,
                    *, source: str, attachment_id: str | None = None) -> AttachmentRef:
        """Store bytes once and return a new reference to them.

        `attachment_id` makes a retried store (same message processed again) return the
        same reference instead of a second one.
        """
        if len(data) > self.max_bytes:
            raise AttachmentTooLarge(f"{len(data)} bytes is over the limit of {self.max_bytes}")
        name = safe_filename(filename)
        if declared_type and "." not in name:
            ext = mimetypes.guess_extension(declared_type.split(";")[0].strip()) or ""
            name += ext
        sha = await self.blobs.put(data)
        ref_id = attachment_id or str(uuid.uuid4())
        doc = {"_id": ref_id, "filename": name, "content_type": sniff_content_type(data, name),
               "declared_type": declared_type, "size": len(data), "sha256": sha,
               "source": source, "created_at": datetime.now(UTC)}
        return self.ref(await self.repo.record_attachment(doc))

    def ref(self, doc: dict) -> AttachmentRef:
        return AttachmentRef(id=doc["_id"], filename=doc["filename"],
                             content_type=doc["content_type"], size=doc["size"],
                             sha256=doc["sha256"], url=self.url_for(doc["_id"]))

    async def load(self, attachment_id: str) -> tuple[dict, bytes] | None:
        doc = await self.repo.attachment(attachment_id)
        if doc is None:
            return None
        data = await self.blobs.get(doc["sha256"])
        return (doc, data) if data is not None else None
