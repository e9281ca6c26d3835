"""`python -m intake` serves intake on its fixed port (8001 unless INTAKE_HTTP_PORT)."""

from desk_runtime.http import serve

from intake.main import create_app
from intake.settings import IntakeSettings

settings = IntakeSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
