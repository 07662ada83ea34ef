"""How the controller's log lines are written: text for people, JSON lines for log shippers.

Call lines (ivr.controller.calllog) carry their fields as a dict under the
record attribute `FIELDS`; the text form has them in the message already,
the JSON form adds them as top-level keys so that a log store can filter
on `call`, `outcome` or `latency_ms` without parsing messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

FIELDS = "ivr_fields"  # LogRecord attribute: structured fields of a line (logging's `extra`)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call whose fields the JSON form should carry (None values left out)."""
    return {FIELDS: {key: value for key, value in values.items() if value is not None}}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, then the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, FIELDS, None) or {}).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str, form: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing `form` (text or json) to `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


SHOWN_CHARS = 64


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value from outside, fit for one log line: escaped (`repr`), and cut after `limit`
    characters with its full length said, so that a megabyte form field logs as a few bytes."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}...({len(value)} chars)"
