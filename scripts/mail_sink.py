"""A local SMTP sink for `make run`: every message is kept as an .eml file to read."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class KeepMail:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        (self.folder / name).write_bytes(envelope.content)
        print(f"mail to {', '.join(envelope.rcpt_tos)} kept as {self.folder / name}", flush=True)
        return "250 OK"


def main() -> None:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(KeepMail(folder), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
