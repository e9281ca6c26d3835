"""`python -m boards` serves boards on its fixed port (8002 unless BOARDS_HTTP_PORT)."""

from desk_runtime.http import serve

from boards.main import create_app
from boards.settings import BoardsSettings

settings = BoardsSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
