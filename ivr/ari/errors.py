"""ARI failures as exceptions a controller can catch by meaning.

Asterisk answers errors with a status and a JSON body ``{"message": "..."}``.
The same status means different things (404 "Channel not found" = the caller
hung up; 404 "Provided variable was not found" = the variable is unset), so
404s are split by message. Every exception keeps status, method, path and
message so logs say exactly which request failed.
"""

from __future__ import annotations

import json
from typing import Any


class AriError(Exception):
    """Base class of every ARI failure (HTTP error or no answer at all)."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = f"{self.method} {self.path}".strip()
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{where}{status}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, message={self.message!r})"
        )


class AriConnectionError(AriError):
    """Asterisk could not be reached or did not answer in time (no HTTP status)."""


class BadRequest(AriError):
    """400: a parameter is missing or malformed (a bug in our request)."""


class AuthenticationError(AriError):
    """401/403: wrong ARI user/password or an address not permitted in ari.conf."""


class NotFound(AriError):
    """404: the object (or, for an unknown message, the resource) does not exist."""


class ChannelNotFound(NotFound):
    """404 "Channel not found": typically the caller already hung up."""


class PlaybackNotFound(NotFound):
    """404 "Playback not found": the prompt already finished or was stopped."""


class BridgeNotFound(NotFound):
    """404 "Bridge not found"."""


class RecordingNotFound(NotFound):
    """404 "Recording not found"."""


class VariableNotFound(NotFound):
    """404 "Provided variable was not found": the channel exists, the variable is unset."""


class WrongState(AriError):
    """409: the object exists but is in the wrong state for this operation."""


class Unprocessable(AriError):
    """422: e.g. "Channel not in Stasis application" (not yet, or no longer)."""


class AriServerError(AriError):
    """5xx: Asterisk failed internally (or a request body was unparsable)."""


_NOT_FOUND_BY_MESSAGE: tuple[tuple[str, type[NotFound]], ...] = (
    ("channel not found", ChannelNotFound),
    ("playback not found", PlaybackNotFound),
    ("bridge not found", BridgeNotFound),
    ("recording not found", RecordingNotFound),
    ("variable was not found", VariableNotFound),
)

_BY_STATUS: dict[int, type[AriError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFound,
    409: WrongState,
    422: Unprocessable,
}


def error_message(body: str | bytes | None) -> str:
    """Extract Asterisk's `message` from an error body, else the raw text."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return text.strip()


def error_class(status: int, message: str) -> type[AriError]:
    """Pick the exception class for a status (and, for 404, the message)."""
    if status == 404:
        lowered = message.lower()
        for needle, cls in _NOT_FOUND_BY_MESSAGE:
            if needle in lowered:
                return cls
        return NotFound
    if status >= 500:
        return AriServerError
    return _BY_STATUS.get(status, AriError)


def error_from_response(status: int, method: str, path: str, body: str | bytes | None) -> AriError:
    """Build the exception for one failed ARI response."""
    message = error_message(body) or f"HTTP {status}"
    return error_class(status, message)(message, status=status, method=method, path=path)
