"""The bus library's per-message log calls cost nothing below the configured level, and
what it logs at or above it still reaches the service's JSON log."""

from __future__ import annotations

import json
import logging

from desk_runtime.logging import LevelGatedLogger, clear_contextvars, configure_logging


def test_library_log_lines_below_the_level_are_dropped_and_the_rest_kept(capsys):
    configure_logging("svc", "INFO")
    try:
        gate = LevelGatedLogger("faststream")
        gate.log(logging.DEBUG, "Received", extra={"message_id": "m1"})
        gate.log(logging.ERROR, "Processed with failure", extra={"message_id": "m2"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        assert [(r["event"], r["level"], r["service"]) for r in lines] == [
            ("Processed with failure", "error", "svc")]
        assert lines[0]["extra"] == {"message_id": "m2"}

        configure_logging("svc", "DEBUG")  # an operator asking for everything gets it
        gate.log(logging.DEBUG, "Received", extra={"message_id": "m3"})
        [line] = capsys.readouterr().err.splitlines()
        assert json.loads(line)["event"] == "Received"
    finally:
        configure_logging("svc", "INFO")
        clear_contextvars()
