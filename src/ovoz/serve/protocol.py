"""The OpenAI audio API's request fields and response bodies (json, text, srt, vtt, verbose_json, stream events).

Subtitles come from :mod:`ovoz.subtitles`, the same writers as ``ovoz transcribe``.
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

from .. import subtitles
from ..types import Transcript
from .errors import APIError
from .uploads import Upload

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
LANGUAGES = ("uz", "uzb", "uzbek", "uz-latn", "uz-cyrl", "uz-uz")
"""Names of Uzbek accepted in ``language`` (ISO 639-1, 639-3, the English name, BCP 47 forms)."""
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain; charset=utf-8",
               "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


@dataclass(frozen=True)
class TranscriptionRequest:
    """The validated fields of ``POST /v1/audio/transcriptions``."""

    model: str
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    """Accepted and ignored: the adapter was trained with one fixed prompt, and another one makes it worse."""
    temperature: float = 0.0
    """Accepted and ignored: decoding is greedy (what the adapter was evaluated with)."""
    timestamp_granularities: tuple[str, ...] = ()
    stream: bool = False


def parse_transcription(upload: Upload, *, translation: bool = False) -> TranscriptionRequest:
    """Validate the form; raise :class:`APIError` (400) naming the field at fault."""
    model = upload.value("model")
    if not model:
        raise APIError(400, "the field 'model' is required (any name is accepted; GET /v1/models lists the "
                       "served one).", param="model", code="missing_model")
    response_format = (upload.value("response_format") or "json").strip().lower()
    if response_format not in RESPONSE_FORMATS:
        raise APIError(400, f"response_format={response_format!r}: choose one of {', '.join(RESPONSE_FORMATS)}.",
                       param="response_format", code="invalid_response_format")
    language = upload.value("language")
    if language is not None and language.strip() and language.strip().lower() not in LANGUAGES:
        raise APIError(400, f"language={language!r}: this server transcribes Uzbek only; send language=uz or "
                       "leave it out.", param="language", code="unsupported_language")
    temperature = _float(upload.value("temperature"), "temperature", 0.0)
    if not 0.0 <= temperature <= 1.0:
        raise APIError(400, f"temperature={temperature!r}: give a number between 0 and 1 (decoding is greedy "
                       "whatever it is).", param="temperature", code="invalid_temperature")
    given = upload.fields.get("timestamp_granularities[]", []) + upload.fields.get("timestamp_granularities", [])
    granularities = tuple(value.strip().lower() for value in given if value.strip())
    for value in granularities:
        if value == "word":
            raise APIError(400, "timestamp_granularities[]=word: word times are not available yet; ask for "
                           "'segment' (verbose_json has segment times).", param="timestamp_granularities",
                           code="unsupported_granularity")
        if value != "segment":
            raise APIError(400, f"timestamp_granularities[]={value!r}: choose 'segment'.",
                           param="timestamp_granularities", code="invalid_granularity")
    stream = _bool(upload.value("stream"), "stream")
    if stream and response_format not in ("json", "text"):
        raise APIError(400, f"stream=true sends text events; it works with response_format json or text, not "
                       f"{response_format}.", param="stream", code="unsupported_stream_format")
    return TranscriptionRequest(model, response_format, language, upload.value("prompt"), temperature,
                                granularities, stream)


def _float(raw: str | None, name: str, default: float) -> float:
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise APIError(400, f"{name}={raw!r}: give a number.", param=name, code=f"invalid_{name}") from None


def _bool(raw: str | None, name: str) -> bool:
    if raw is None or not raw.strip():
        return False
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise APIError(400, f"{name}={raw!r}: give true or false.", param=name, code=f"invalid_{name}")


# ------------------------------------------------------------------------------------------- responses


def duration_usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": transcript.duration_s}


def token_usage(audio_tokens: int, text_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"type": "tokens", "input_tokens": audio_tokens + text_tokens, "output_tokens": output_tokens,
            "total_tokens": audio_tokens + text_tokens + output_tokens,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": text_tokens}}


def render(transcript: Transcript, response_format: str, tokens: Sequence[Sequence[int]] = (),
           subtitle_options: subtitles.SubtitleOptions | None = None) -> tuple[str, str]:
    """(body, media type) of ``transcript`` in ``response_format``. ``tokens``: the generated ids per segment."""
    if response_format == "json":
        body = json.dumps({"text": transcript.text, "usage": duration_usage(transcript)}, ensure_ascii=False)
    elif response_format == "verbose_json":
        body = json.dumps(verbose(transcript, tokens), ensure_ascii=False)
    elif response_format == "text":
        body = transcript.text + "\n"
    else:
        buffer = io.StringIO()
        subtitles.write(transcript, response_format, buffer, subtitle_options)
        body = buffer.getvalue()
    return body, MEDIA_TYPES[response_format]


def verbose(transcript: Transcript, tokens: Sequence[Sequence[int]] = ()) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: segments with start/end in seconds, avg_logprob, compression ratio."""
    segments = []
    for index, segment in enumerate(transcript.segments):
        ids = list(tokens[index]) if index < len(tokens) else []
        segments.append({
            "id": segment.id, "seek": int(round(segment.start_s * 100)), "start": segment.start_s,
            "end": segment.end_s, "text": segment.text, "tokens": ids, "temperature": 0.0,
            "avg_logprob": segment.avg_logprob if segment.avg_logprob is not None else 0.0,
            "compression_ratio": compression_ratio(segment.text), "no_speech_prob": 0.0,
        })
    return {"task": "transcribe", "language": "uzbek", "duration": transcript.duration_s, "text": transcript.text,
            "segments": segments, "usage": duration_usage(transcript)}


def compression_ratio(text: str) -> float:
    """Bytes over zlib-compressed bytes (as Whisper reports it; high values flag repetition)."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 3) if data else 0.0


def event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode("utf-8")
