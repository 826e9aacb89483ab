"""How fast ovoz.text runs over real Uzbek sentences: every named normalizer and the transliterators.

    python benchmarks/text_speed.py [--text-dir DIR] [--repeat 5] [--limit N]

Reads the 7,620 USC dev/test transcripts (lowercase Latin, ASCII apostrophes) and the Common Voice
sentences (cased, punctuated, mixed apostrophes) from ``shared/data/text`` (``--text-dir`` or
$OVOZ_SHARED_TEXT elsewhere), makes a Cyrillic copy of the USC set with ``to_cyrillic``, and prints
one row per (step, input): sentences, the first pass (word caches cold), the best of ``--repeat`` passes,
and microseconds per sentence of the best pass.
Runs on the CPU in a few seconds; the figures are for comparing two versions on one machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _text_dir(given: str | None) -> Path:
    candidates = [
        given,
        os.environ.get("OVOZ_SHARED_TEXT"),
        ROOT / "shared/data/text",
        ROOT.parent / "shared/data/text",
    ]
    candidates += [Path(parent) / "shared/data/text" for parent in ROOT.parents]
    for candidate in candidates:
        if candidate and (Path(candidate) / "usc_dev_test_transcripts.tsv").exists():
            return Path(candidate)
    raise SystemExit("usc_dev_test_transcripts.tsv not found: pass --text-dir or set OVOZ_SHARED_TEXT")


def _load(directory: Path, limit: int | None) -> dict[str, list[str]]:
    rows = (directory / "usc_dev_test_transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    usc = [row.split("\t", 2)[2] for row in rows if row.count("\t") >= 2][:limit]
    sets = {"usc": usc}
    cv_path = directory / "cv_uz_sentences.txt"
    if cv_path.exists():
        sets["cv"] = [line for line in cv_path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    return sets


def _clear_word_caches() -> None:
    """Forget the words transliterated so far (versions of ovoz.text that cache them), for a cold first pass."""
    from ovoz.text import script

    for name in ("_latin_word", "_cyrillic_word"):
        cached = getattr(script, name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def _timings(function: Callable[[str], object], texts: list[str], repeat: int) -> tuple[float, float]:
    """Seconds of the first pass over ``texts`` (word caches cold) and of the best of ``repeat`` passes."""
    _clear_word_caches()
    runs = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        for text in texts:
            function(text)
        runs.append(time.perf_counter() - start)
    return runs[0], min(runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-dir", help="folder with usc_dev_test_transcripts.tsv (and cv_uz_sentences.txt)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the best is printed (default 5)")
    parser.add_argument("--limit", type=int, help="use only the first N sentences of each set")
    args = parser.parse_args(argv)

    from ovoz import text

    sets = _load(_text_dir(args.text_dir), args.limit)
    sets["usc-cyrillic"] = [text.to_cyrillic(sentence) for sentence in sets["usc"]]
    jobs: list[tuple[str, str, Callable[[str], object]]] = []
    for name in text.available_normalizers():
        normalizer = text.get_normalizer(name)
        try:
            normalizer("warm up")  # whisper-basic imports transformers once, outside the timing
        except ImportError as error:
            print(f"# {name} skipped: {error}")
            continue
        jobs += [(name, data, normalizer) for data in sets]
    jobs += [
        ("to_latin", "usc-cyrillic", text.to_latin),
        ("to_cyrillic", "usc", text.to_cyrillic),
        ("to_cyrillic", "cv", text.to_cyrillic),
        ("expand_numbers", "usc", text.expand_numbers),
    ]
    print(f"{'step':<16} {'input':<13} {'sentences':>9} {'first s':>8} {'best s':>8} {'us/sentence':>12}")
    for step, data, function in jobs:
        if data not in sets:
            continue
        texts = sets[data]
        first, best = _timings(function, texts, args.repeat)
        per_sentence = 1e6 * best / len(texts)
        print(f"{step:<16} {data:<13} {len(texts):>9} {first:>8.3f} {best:>8.3f} {per_sentence:>12.1f}")


if __name__ == "__main__":
    main()
