"""Multipart uploads streamed straight to a private temporary file, with the size limit checked as bytes arrive.

Starlette's own form parser keeps the whole file before the handler sees it; here the request body is fed to
python-multipart's streaming parser chunk by chunk, the ``file`` part goes to a file created with ``mkstemp``
(mode 0600) in a private directory, and the upload stops at the limit. The caller removes the file
(:meth:`Upload.remove`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from .errors import APIError

logger = logging.getLogger(__name__)

MAX_FIELD_BYTES = 64 * 1024
"""A form field other than the file (a prompt, a format name) larger than this is refused."""
MAX_FIELDS = 64
DRAIN_LIMIT = 64 * (1 << 20)
"""After the limit, up to this much more of the body is read and dropped, so the client can read its 413."""


@dataclass
class Upload:
    """The form's text fields (a list per name, in order) and the uploaded file."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0

    def value(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def remove(self) -> None:
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.path = None


class _Parser:
    def __init__(self, directory: Path, max_file_bytes: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.upload = Upload()
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.data = bytearray()
        self.file: Any = None
        self.is_file = False
        self.too_large = False
        self.files = 0

    def on_part_begin(self) -> None:
        self.headers, self.data, self.name, self.is_file = {}, bytearray(), None, False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise APIError(400, "a multipart part has no name in its Content-Disposition header.")
        self.name = options[b"name"].decode("utf-8", "replace")
        self.is_file = self.name == "file"
        if self.is_file:
            self.files += 1
            if self.files > 1:
                raise APIError(400, "send one file per request.", param="file")
            self.upload.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
            content_type = self.headers.get(b"content-type")
            self.upload.content_type = content_type.decode("latin-1") if content_type else None
            descriptor, name = tempfile.mkstemp(prefix="upload-", suffix=_suffix(self.upload.filename),
                                                dir=self.directory)
            self.upload.path = Path(name)
            self.file = os.fdopen(descriptor, "wb")
        elif sum(len(v) for v in self.upload.fields.values()) >= MAX_FIELDS:
            raise APIError(400, f"more than {MAX_FIELDS} form fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            self.upload.size += end - start
            if self.upload.size > self.max_file_bytes:
                self.too_large = True
                return
            self.file.write(data[start:end])
        else:
            self.data += data[start:end]
            if len(self.data) > MAX_FIELD_BYTES:
                raise APIError(400, f"the form field {self.name!r} is longer than {MAX_FIELD_BYTES} bytes.",
                               param=self.name)

    def on_part_end(self) -> None:
        if self.is_file:
            self.file.close()
            self.file = None
        else:
            self.upload.fields.setdefault(self.name or "", []).append(self.data.decode("utf-8", "replace"))


def _suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 8 else ""


async def receive_upload(headers: Any, stream: AsyncIterator[bytes], directory: Path, max_file_bytes: int) -> Upload:
    """Parse a ``multipart/form-data`` body from ``stream``; raise :class:`APIError` (400, 413) on a bad one.
    On error nothing is left on disk."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, options = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise APIError(400, "send the request as multipart/form-data with the audio in the field 'file' "
                       "(as the OpenAI clients do).", code="invalid_content_type")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_file_bytes + DRAIN_LIMIT:
        raise _too_large(max_file_bytes, int(declared))  # not worth reading at all
    parser = _Parser(directory, max_file_bytes)
    callbacks = {name: getattr(parser, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished")}
    multipart = MultipartParser(options[b"boundary"], callbacks)
    try:
        drained = 0
        async for chunk in stream:
            if parser.too_large:  # read (and drop) the rest so that the client gets the 413, up to a point
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    break
                continue
            multipart.write(chunk)
        if parser.too_large:
            raise _too_large(max_file_bytes, parser.upload.size)
        multipart.finalize()
        if parser.upload.path is None:
            raise APIError(400, "no audio file: send it in the multipart field 'file'.", param="file",
                           code="missing_file")
        return parser.upload
    except APIError:
        _cleanup(parser)
        raise
    except Exception as error:  # python-multipart's MultipartParseError and friends: a malformed body
        _cleanup(parser)
        raise APIError(400, f"the multipart body could not be parsed ({error}).") from error
    except BaseException:  # the client went away mid-upload (task cancelled)
        _cleanup(parser)
        raise


def _cleanup(parser: _Parser) -> None:
    if parser.file is not None:
        parser.file.close()
    parser.upload.remove()


def _too_large(limit: int, size: int) -> APIError:
    return APIError(413, f"the upload is over the server's limit of {limit / (1 << 20):.1f} MiB "
                    f"({size / (1 << 20):.1f} MiB or more were sent); send a smaller or compressed file, or raise "
                    "the limit (--max-upload-mb, OVOZ_MAX_UPLOAD_BYTES).", param="file", code="file_too_large")


def private_directory() -> Path:
    """A fresh directory only this user can read (mode 0700), for the uploads of one server."""
    return Path(tempfile.mkdtemp(prefix="ovoz-serve-"))
