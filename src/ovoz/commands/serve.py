"""``ovoz serve``: the OpenAI-compatible transcription server (FastAPI + uvicorn) with a web page."""

from __future__ import annotations

import argparse


def register(commands: "argparse._SubParsersAction") -> None:
    from .common import add_model_arguments

    parser = commands.add_parser(
        "serve", help="serve OpenAI's /v1/audio/transcriptions API and a web page",
        description="Serve Uzbek transcription over HTTP: OpenAI's /v1/audio/transcriptions (json, text, srt, vtt, "
        "verbose_json, streaming), /v1/models, /health, /ready, /metrics and a web page at /. One model per process; "
        "chunks of all requests share the engine's batch slots. Every option also reads an environment variable "
        "(OVOZ_PORT, OVOZ_API_KEYS, ...; flags win). Needs the serve extra: pip install 'ovoz[serve]'.",
    )
    add_model_arguments(parser)
    net = parser.add_argument_group("server")
    net.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    net.add_argument("--port", type=int, help="port (default 8000)")
    net.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY",
                     help="accept this bearer key (repeat for several; OVOZ_API_KEYS is comma-separated); "
                          "without any, no key is asked")
    net.add_argument("--max-upload-mb", type=float, help="uploads over this many MiB get 413 (default 25)")
    net.add_argument("--max-requests", type=int,
                     help="requests admitted at once, transcribing or waiting; beyond it 429 (default 512)")
    net.add_argument("--timeout", type=float, dest="timeout_s", help="request timeout: seconds (default 60) ...")
    net.add_argument("--timeout-per-audio-second", type=float, dest="timeout_per_audio_s",
                     help="... plus this many seconds per second of audio (default 1)")
    net.add_argument("--model-name", help="the model id /v1/models lists (default ovoz-uz)")
    net.add_argument("--no-warmup", action="store_true", help="skip the warm-up decode before /ready says ready")
    net.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                     help="uvicorn's log level (default info)")
    dec = parser.add_argument_group("decoding")
    dec.add_argument("--batch-size", type=int,
                     help="engine slots: chunks of all requests decoded together (default 8; on a GPU 64-256)")
    dec.add_argument("--max-new-tokens", type=int, help="new tokens per chunk at most (default 256)")
    dec.add_argument("--script", choices=["latin", "cyrillic"], help="output script (default latin)")
    ray = parser.add_argument_group("Ray Serve (replicas behind one endpoint; needs pip install 'ovoz[ray]')")
    ray.add_argument("--ray-replicas", type=int, metavar="N",
                     help="serve N replicas of this server through Ray Serve's proxy on --host/--port "
                          "(one model each, one GPU each on a cluster with GPUs)")
    ray.add_argument("--ray-address", metavar="ADDRESS",
                     help="the Ray cluster (auto, host:6379, ray://host:10001; default RAY_ADDRESS, else a local one)")
    ray.add_argument("--ray-gpus-per-replica", type=float, metavar="G",
                     help="GPUs per replica (default 1 on a cluster with GPUs, else 0)")
    parser.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace, environ=None):
    """Defaults, then OVOZ_* variables, then the flags given."""
    from ..serve.settings import MiB, ServeSettings
    from ..types import DEFAULT_ADAPTER, DEFAULT_BASE
    from .common import fused_kernels_from_args

    flags = {
        "host": args.host, "port": args.port, "api_keys": tuple(args.api_keys) if args.api_keys else None,
        "max_upload_bytes": int(args.max_upload_mb * MiB) if args.max_upload_mb is not None else None,
        "max_requests": args.max_requests, "timeout_s": args.timeout_s,
        "timeout_per_audio_s": args.timeout_per_audio_s, "model_name": args.model_name,
        "warmup": False if args.no_warmup else None, "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "script": args.script,
        # Model flags have defaults of their own: they win over the environment only when given.
        "base": args.base if args.base != DEFAULT_BASE else None,
        "adapter": args.adapter if args.adapter != DEFAULT_ADAPTER else None,
        "no_adapter": True if args.no_adapter else None, "device": args.device, "dtype": args.dtype,
        "quantization": "4bit" if args.four_bit else None,
        "local_files_only": True if args.local_files_only else None,
        "fused_kernels": fused_kernels_from_args(args) if args.fused_kernels != "auto" else None,
        "engine": args.engine if args.engine != "auto" else None,
    }
    return ServeSettings.from_env(environ, **flags)


def run(args: argparse.Namespace) -> int:
    from ..errors import DependencyError

    settings = settings_from_args(args)
    if args.ray_replicas is not None:
        from ..scale.serve import run_replicas

        run_replicas(settings, args.ray_replicas, address=args.ray_address,
                     gpus_per_replica=args.ray_gpus_per_replica)
        return 0
    try:
        import uvicorn
    except ImportError as error:
        raise DependencyError("ovoz serve needs uvicorn: pip install 'ovoz[serve]'.") from error
    from ..serve import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level,
                timeout_graceful_shutdown=30)
    return 0
