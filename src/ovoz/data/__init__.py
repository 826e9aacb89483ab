"""Corpora as streams of typed `Utterance`s: JSONL manifests, Common Voice, FLEURS, local HF datasets.

Every reader is a generator (a 650k-row corpus streams), checks referenced files exist without decoding
them, and applies an `on_error` policy to bad rows ("raise", or "skip" + a `ReadReport`).
"""

from .commonvoice import read_common_voice
from .detect import ACCEPTED_LAYOUTS, FORMATS, detect_format, open_dataset
from .fleurs import read_fleurs
from .hf import read_hf_dataset
from .jsonl import read_jsonl_manifest, write_jsonl_manifest
from .model import AudioArray, ReadReport, RowError, Utterance

__all__ = [
    "ACCEPTED_LAYOUTS",
    "FORMATS",
    "AudioArray",
    "ReadReport",
    "RowError",
    "Utterance",
    "detect_format",
    "open_dataset",
    "read_common_voice",
    "read_fleurs",
    "read_hf_dataset",
    "read_jsonl_manifest",
    "write_jsonl_manifest",
]
