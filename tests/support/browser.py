"""Headless Chromium for the browser tests (Debian's package; Playwright's download is not
reachable here), and where their screenshots go for the README."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Everything runs on loopback here; in the field an intranet page and the portal share an
# address space, so Chromium's local-network checks would not stand between them.
LOOPBACK_FLAGS = ("--disable-features=LocalNetworkAccessChecks,"
                  "BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights")


@contextmanager
def chromium(*, loopback_embedding: bool = False) -> Iterator[Browser]:
    """A headless browser; close it before the stack's clean-up (Playwright's sync API runs
    its own event loop in the test's thread)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[LOOPBACK_FLAGS] if loopback_embedding else [])
        try:
            yield browser
        finally:
            browser.close()
