"""A small Bot API client (httpx) honouring Telegram's 429 `retry_after`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


class TelegramError(Exception):
    def __init__(self, method: str, code: int, description: str):
        super().__init__(f"{method}: {code} {description}")
        self.code = code
        self.description = description


class BotApi:
    def __init__(self, token: str, api_base: str, *, max_retries: int = 3):
        self.token = token
        self.base = api_base.rstrip("/")
        self.max_retries = max_retries
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(70.0, connect=10.0))

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, **params: Any) -> Any:
        url = f"{self.base}/bot{self.token}/{method}"
        body = {k: (json.dumps(v) if k == "reply_markup" and not isinstance(v, str) else v)
                for k, v in params.items() if v is not None}
        for attempt in range(self.max_retries + 1):
            response = await self.http.post(url, json=body)
            try:
                data = response.json()
            except ValueError:
                raise TelegramError(method, response.status_code, response.text[:200]) from None
            if data.get("ok"):
                return data.get("result")
            code = int(data.get("error_code") or response.status_code)
            retry_after = (data.get("parameters") or {}).get("retry_after")
            if code == 429 and retry_after is not None and attempt < self.max_retries:
                await asyncio.sleep(min(float(retry_after), 30.0))
                continue
            raise TelegramError(method, code, str(data.get("description", "")))
        raise TelegramError(method, 429, "too many retries")

    async def download(self, file_id: str) -> tuple[bytes, str]:
        """The file's bytes and its path (getFile, then the file endpoint)."""
        info = await self.call("getFile", file_id=file_id)
        path = info["file_path"]
        response = await self.http.get(f"{self.base}/file/bot{self.token}/{path}")
        response.raise_for_status()
        return response.content, path
