"""`python -m portal` serves the portal on its fixed port (8000 unless PORTAL_HTTP_PORT)."""

import sys

import uvicorn
from pydantic import ValidationError

from portal.main import create_app
from portal.settings import PortalSettings

try:
    settings = PortalSettings()
except ValidationError as exc:  # e.g. no PORTAL_PUBLIC_URL in production: refuse to start
    sys.exit(f"portal: refusing to start: {exc}")
# proxy_headers=False: uvicorn would believe X-Forwarded-For/-Proto from any local peer;
# the portal reads them itself, only from PORTAL_TRUSTED_PROXIES
uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
            log_level="warning", access_log=False, proxy_headers=False)
