"""`python -m notify` serves notify on its fixed port (8004 unless NOTIFY_HTTP_PORT)."""

from desk_runtime.http import serve

from notify.main import create_app
from notify.settings import NotifySettings

settings = NotifySettings()
serve(create_app(settings), settings.http_host, settings.http_port)
