"""Errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}`` with a 4xx/5xx status."""

from __future__ import annotations

from typing import Any

from ..errors import AudioError, EmptyAudioError, NoAudioStreamError

TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
         405: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
         422: "invalid_request_error", 429: "rate_limit_error", 503: "server_error", 504: "timeout_error",
         500: "server_error"}


class APIError(Exception):
    """An error answered to the client; ``headers`` go with it (``Retry-After``, ``WWW-Authenticate``)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def audio_error(error: AudioError, filename: str | None) -> APIError:
    """The decoder's readable message, naming the uploaded file rather than the temporary one."""
    text, prefix = str(error), f"{error.source}: "
    reason = text[len(prefix):] if text.startswith(prefix) else text
    message = f"{filename or 'the upload'}: {reason}"
    if isinstance(error, EmptyAudioError):
        return APIError(400, message, param="file", code="empty_file")
    if isinstance(error, NoAudioStreamError):
        return APIError(415, message, param="file", code="no_audio_stream")
    return APIError(415 if "not a readable audio" in reason else 400, message, param="file",
                    code="unsupported_media" if "not a readable audio" in reason else "invalid_audio")
