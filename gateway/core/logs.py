"""Logging set-up: readable lines in development, JSON lines in production."""

from __future__ import annotations

import json
import logging
import re
import sys

from gateway.core.middleware import RequestIdFilter

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        data.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line


_SECRETS = [
    re.compile(r"(token=)[^&\s]+"),
    # Should a library ever log a request or an OAuth answer (Orange's API): the Authorization
    # header (Basic client credentials, Bearer token) and the token or secret fields.
    re.compile(r"((?:Basic|Bearer)\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"""((?:access_token|client_secret)["']?\s*[:=]\s*["']?)[^"'&\s,}]+"""),
]


def _redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactSecrets(logging.Filter):
    """Access logs print the full path: keep the webhook secret (?token=...) out of them, and
    credentials out of any line that quotes a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


def configure(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets())
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactSecrets())
    handler.setFormatter(
        JsonFormatter() if json_lines else TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
