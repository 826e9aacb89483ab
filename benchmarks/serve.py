"""Issue 14: ``ovoz serve`` under load on the full-size E4B (random bf16 weights), beside the offline engine in the
same process and run.

    python benchmarks/serve.py [--clients 1 8 64 256] [--seconds 10] [--requests-per-client 4] [--max-slots 256]
                               [--long-minutes 10] [--short-clients 8] [--tokens-per-s 6] [--fused-kernels on|off]
                               [--results-dir benchmarks/results]
    python benchmarks/serve.py --smoke     # CPU, tiny model, seconds: checks the code path (not a measurement)

Every client sends ``--requests-per-client`` requests of a ``--seconds`` clip of real speech one after another,
over HTTP on loopback (clients run in a subprocess, asyncio + httpx, so they do not share the server's GIL). The
server has ``min(clients, --max-slots)`` engine slots. Random weights never emit a stop token, so every chunk
decodes ``tokens_per_s * duration + 16`` tokens (the engines' stop tokens are cleared): the work is fixed.

Rows: ``offline`` is ``Transcriber.generate_clips`` on the same clips at the same batch size (one call: the
engine sorts and refills), or one clip at a time for one client; ``server`` the same load through the HTTP API;
``mix`` one ``--long-minutes`` upload while ``--short-clients`` clients keep sending short clips, beside the
long recording transcribed offline alone. Columns: requests/s, RTFx (audio seconds per wall second), p50/p99
request latency, peak GPU memory, and the server's RTFx as a share of the offline one. Prints a table and writes
``serve-<date>.json`` under ``--results-dir`` (date, machine, versions, command, one object per row). "peak GiB" is
the process's peak during the row: weights, the row's engine (its KV cache sized for 256 new tokens a row) and
activations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COLUMNS = ["mode", "clients", "slots", "requests", "audio s", "wall s", "req/s", "RTFx", "p50 s", "p99 s",
           "long s", "peak GiB", "vs offline"]


# ------------------------------------------------------------------------------------ the client process


def client_main(args: argparse.Namespace) -> None:
    """``--client URL``: run the load and print one JSON line (latencies, wall time, failures)."""
    import httpx

    n_clients = args.clients[0]
    short = Path(args.short_file).read_bytes()
    long = Path(args.long_file).read_bytes() if args.long_file else None

    async def post(client: httpx.AsyncClient, data: bytes, name: str) -> float:
        started = time.perf_counter()
        response = await client.post(args.client + "/v1/audio/transcriptions", files={"file": (name, data)},
                                     data={"model": "ovoz", "response_format": "json"})
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return time.perf_counter() - started

    async def main() -> dict:
        limits = httpx.Limits(max_connections=n_clients + 2, max_keepalive_connections=n_clients + 2)
        async with httpx.AsyncClient(timeout=3600, limits=limits) as client:
            latencies: list[float] = []
            failures: list[str] = []
            long_done = asyncio.Event()
            long_s: list[float] = []

            async def session() -> None:
                count = 0
                while count < args.requests or (long is not None and not long_done.is_set()):
                    try:
                        latencies.append(await post(client, short, "short.wav"))
                    except Exception as error:  # noqa: BLE001 - counted and reported
                        failures.append(str(error))
                    count += 1
                    if long is not None and count >= args.requests and long_done.is_set():
                        break

            async def long_upload() -> None:
                try:
                    long_s.append(await post(client, long, "long.wav"))
                finally:
                    long_done.set()

            started = time.perf_counter()
            tasks = [session() for _ in range(n_clients)] + ([long_upload()] if long is not None else [])
            await asyncio.gather(*tasks)
            wall = time.perf_counter() - started
            return {"latencies": latencies, "wall": wall, "failures": failures, "long_s": long_s[0] if long_s else None}

    print(json.dumps(asyncio.run(main())))


def run_clients(url: str, clients: int, requests: int, short_file: Path, long_file: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--client", url, "--clients", str(clients), "--requests", str(requests),
               "--short-file", str(short_file)] + (["--long-file", str(long_file)] if long_file else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the client process failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["failures"]:
        raise RuntimeError(f"{len(result['failures'])} requests failed, e.g. {result['failures'][0]}")
    return result


# ------------------------------------------------------------------------------------ the server process


def in_thread(fn):
    """Run ``fn`` in a fresh thread, as the server's model thread decodes: the offline figures are then taken in the
    same kind of thread (on a shared CPU, torch in the main thread was measured 10x slower than in another one)."""
    result: list = []
    errors: list = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as error:  # noqa: BLE001 - raised again in the caller
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, q)), 3) if values else float("nan")


class Server:
    """The app on 127.0.0.1 (a free port) in a uvicorn thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        import httpx

        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        while httpx.get(url + "/ready").status_code != 200:
            time.sleep(0.1)
        return url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--max-slots", type=int, default=256)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--short-clients", type=int, default=8)
    parser.add_argument("--tokens-per-s", type=float, default=6.0)
    parser.add_argument("--fused-kernels", choices=["on", "off"], default="on")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU, small load (a code-path check)")
    # client-process mode (internal)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--short-file", help=argparse.SUPPRESS)
    parser.add_argument("--long-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if args.smoke:
        os.environ["OVOZ_BENCH_SMOKE"] = "1"
        args.clients, args.seconds, args.requests_per_client, args.max_slots = [1, 3], 2.0, 1, 4
        args.long_minutes, args.short_clients, args.tokens_per_s = 35 / 60, 2, 1.0
    run(args)


def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    import soundfile
    from common import (
        DEVICE,
        SMOKE,
        build_e4b,
        clip_of,
        machine,
        peak_gib,
        real_clips,
        reset_peak,
        table,
        write_results,
    )
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    import ovoz
    from ovoz.gemma.decoder import GemmaDecoder
    from ovoz.gemma.loading import ModelInfo
    from ovoz.gemma.processor import build_processor
    from ovoz.serve import ServeSettings, create_app
    from ovoz.transcriber import Transcriber

    model, tokenizer = build_e4b()
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    info = ModelInfo("random e4b" if not SMOKE else "random tiny", None, DEVICE,
                     str(model.dtype).removeprefix("torch."), None)
    decoder = GemmaDecoder(model, processor, info, engine="static" if DEVICE == "cuda" else "auto",
                           fused_kernels=args.fused_kernels == "on" if DEVICE == "cuda" else None)
    transcriber = Transcriber(decoder)
    clips = real_clips()
    short = clip_of(args.seconds, clips)
    rng = np.random.default_rng(0)
    pieces, total = [], 0
    while total < args.long_minutes * 60 * 16000:  # real speech with pauses, so VAD finds places to cut
        for clip in clips:
            pieces += [clip, np.zeros(int(rng.uniform(0.5, 3.0) * 16000), np.float32)]
            total += len(pieces[-2]) + len(pieces[-1])
    long = np.concatenate(pieces)[: int(args.long_minutes * 60 * 16000)]
    work = Path(tempfile.mkdtemp(prefix="ovoz-bench-serve-"))
    soundfile.write(work / "short.wav", short, 16000, subtype="FLOAT")  # float WAV: offline and server see the
    soundfile.write(work / "long.wav", long, 16000, subtype="FLOAT")    # same samples
    long_s = len(long) / 16000

    def options_for(slots: int):
        return ovoz.TranscribeOptions(batch_size=slots, tokens_per_s_cap=args.tokens_per_s)

    def fixed_work(slots: int) -> None:
        """Only this row's engine in memory: the one both the offline decode (as many clips as slots or more) and
        the server's ``serve_jobs`` use, with its stop tokens cleared (random weights: fixed work)."""
        if DEVICE != "cuda":
            return
        import torch

        decoder._static.clear()
        torch.cuda.empty_cache()
        decoder.static_engine(slots, options_for(slots).max_new_tokens).stops = []

    from ovoz.repetition import max_new_tokens_for

    cap = max_new_tokens_for(args.seconds, args.tokens_per_s, 256)
    rows = []
    for clients in args.clients:
        slots = min(clients, args.max_slots)
        options = options_for(slots)
        fixed_work(slots)
        n = clients * args.requests_per_client
        audio = n * args.seconds
        # Offline: the same clips through the engine at the same batch size.
        in_thread(lambda: transcriber.generate_clips([short] * slots, options, max_new_tokens=[cap] * slots))  # warm-up
        reset_peak()
        if clients == 1:
            latencies = []
            started = time.perf_counter()
            for _ in range(n):
                t0 = time.perf_counter()
                in_thread(lambda: transcriber.generate_clips([short], options, max_new_tokens=[cap]))
                latencies.append(time.perf_counter() - t0)
            wall = time.perf_counter() - started
        else:
            latencies = []
            started = time.perf_counter()
            in_thread(lambda: transcriber.generate_clips([short] * n, options, max_new_tokens=[cap] * n))
            wall = time.perf_counter() - started
        offline = {"mode": "offline", "clients": clients, "slots": slots, "requests": n, "audio s": audio,
                   "wall s": round(wall, 2), "req/s": round(n / wall, 2), "RTFx": round(audio / wall, 1),
                   "p50 s": percentile(latencies, 50) if latencies else "", "p99 s": percentile(latencies, 99)
                   if latencies else "", "peak GiB": peak_gib()}
        rows.append(offline)
        print(offline, flush=True)
        # The server: the same load over HTTP.
        settings = ServeSettings(batch_size=slots, max_requests=max(512, 2 * clients), timeout_s=3600)
        app = create_app(settings, transcriber, options=options)
        with Server(app) as url:
            run_clients(url, clients, 1, work / "short.wav")  # warm-up: graphs of the batch sizes it meets
            reset_peak()
            result = run_clients(url, clients, args.requests_per_client, work / "short.wav")
        wall, latencies = result["wall"], result["latencies"]
        row = {"mode": "server", "clients": clients, "slots": slots, "requests": len(latencies), "audio s": audio,
               "wall s": round(wall, 2), "req/s": round(len(latencies) / wall, 2), "RTFx": round(audio / wall, 1),
               "p50 s": percentile(latencies, 50), "p99 s": percentile(latencies, 99), "peak GiB": peak_gib()}
        row["vs offline"] = f"{100 * row['RTFx'] / offline['RTFx']:.0f}%"
        rows.append(row)
        print(row, flush=True)

    # One long upload among short requests.
    slots = min(args.short_clients * 4, args.max_slots)
    options = options_for(slots)
    fixed_work(slots)
    in_thread(lambda: transcriber.transcribe(work / "long.wav", options=options))  # warm-up: same engine, graphs
    reset_peak()
    started = time.perf_counter()
    in_thread(lambda: transcriber.transcribe(work / "long.wav", options=options))
    wall = time.perf_counter() - started
    rows.append({"mode": "offline long alone", "clients": 1, "slots": slots, "requests": 1, "audio s": round(long_s),
                 "wall s": round(wall, 2), "RTFx": round(long_s / wall, 1), "long s": round(wall, 2),
                 "peak GiB": peak_gib()})
    print(rows[-1], flush=True)
    app = create_app(ServeSettings(batch_size=slots, timeout_s=3600), transcriber, options=options)
    with Server(app) as url:
        run_clients(url, args.short_clients, 1, work / "short.wav")
        reset_peak()
        result = run_clients(url, args.short_clients, args.requests_per_client, work / "short.wav", work / "long.wav")
    wall, latencies = result["wall"], result["latencies"]
    audio = len(latencies) * args.seconds + long_s
    rows.append({"mode": "server mix", "clients": args.short_clients + 1, "slots": slots,
                 "requests": len(latencies) + 1, "audio s": round(audio), "wall s": round(wall, 2),
                 "req/s": round(len(latencies) / wall, 2), "RTFx": round(audio / wall, 1),
                 "p50 s": percentile(latencies, 50), "p99 s": percentile(latencies, 99),
                 "long s": round(result["long_s"], 2), "peak GiB": peak_gib()})
    print(rows[-1], flush=True)

    described = (f"{args.seconds:g} s clips of real speech, {args.requests_per_client} requests per client, "
                 f"{args.tokens_per_s:g} new tokens per audio second + 16 (stop tokens cleared on CUDA), "
                 f"mix: one {args.long_minutes:g}-minute upload with {args.short_clients} short-request clients; "
                 f"fused kernels {args.fused_kernels}")
    print(f"\nmachine: {machine()}; {described}")
    print(table(rows, COLUMNS))
    write_results("serve-smoke" if args.smoke else "serve", rows, COLUMNS, str(args.results_dir))


if __name__ == "__main__":
    main()
