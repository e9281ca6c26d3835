"""`python -m sla` serves sla on its fixed port (8003 unless SLA_HTTP_PORT)."""

from desk_runtime.http import serve

from sla.main import create_app
from sla.settings import SlaSettings

settings = SlaSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
