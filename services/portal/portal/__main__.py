"""`python -m portal` serves the portal on its fixed port (8000 unless PORTAL_HTTP_PORT)."""

from desk_runtime.http import serve

from portal.main import create_app
from portal.settings import PortalSettings

settings = PortalSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
