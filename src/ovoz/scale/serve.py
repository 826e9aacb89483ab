"""Replicas of ovoz's HTTP server on Ray Serve: the app of :func:`ovoz.serve.create_app`, one replica per GPU,
behind one endpoint.

Each replica is a Ray actor that loads the model once (the replica counts as started only when the model is
loaded) and runs the whole app: OpenAI's ``/v1/audio/transcriptions`` with every response format and streaming,
the web page, ``/health``, ``/ready``, ``/metrics``. Ray Serve's proxy takes the requests on one port and routes
each to a replica (it prefers the less busy of two); within a replica, the chunks of all its requests share the
engine's batch slots as in ``ovoz serve``. Every response carries the header :data:`REPLICA_HEADER` naming the
replica that served it. ``/metrics`` is per replica (the one that answered).

Two ways to start it:

- ``ovoz serve --ray-replicas N`` (:func:`run_replicas`): connects to ``--ray-address`` / ``RAY_ADDRESS`` or starts
  a local cluster, serves on ``--host``/``--port`` until Ctrl-C.
- ``serve run ovoz.scale.serve:app_builder replicas=2 base=/models/e4b`` (:func:`app_builder`): Ray's own CLI;
  arguments are ``replicas``, ``gpus_per_replica``, ``cpus_per_replica`` and the fields of
  :class:`ovoz.serve.ServeSettings` (``base``, ``adapter``, ``batch_size``, ...). Ray's CLI picks the port
  (8000 unless a config file says otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, DependencyError
from ..serve.settings import ServeSettings, env_name

logger = logging.getLogger(__name__)

REPLICA_HEADER = "x-ovoz-replica"
"""Response header naming the Ray Serve replica that answered."""
DEPLOYMENT = "ovoz"
"""The deployment's and the application's name."""


class OvozReplica:
    """One replica: the model and the whole app of :func:`ovoz.serve.create_app`. Wrapped by Ray Serve's
    ``serve.ingress`` in :func:`deployment` (ray is imported there, not here)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.service: Any = None

    def __serve_build_asgi_app__(self) -> Any:
        """Called by Ray Serve once per replica, after ``__init__``: load the model, build the app."""
        from ray import serve

        from ..serve import create_app
        from ..serve.app import OnResponseStart
        from ..serve.service import load_transcriber

        context = serve.get_replica_context()
        replica = getattr(context.replica_id, "unique_id", None) or str(context.replica_id)
        logger.info("replica %s: loading the model", replica)
        app = create_app(self.settings, transcriber=load_transcriber(self.settings))
        self.service = app.state.service
        header = (REPLICA_HEADER.encode(), replica.encode())
        return OnResponseStart(app, lambda scope, message: {**message, "headers": [*message.get("headers", []), header]})

    def check_health(self) -> None:
        """Ray Serve's health probe: a replica whose model thread failed is replaced."""
        if self.service is not None and (self.service.model.error is not None or not self.service.model.alive):
            raise RuntimeError(f"the model is not available ({self.service.model.error})")


def deployment(settings: ServeSettings, replicas: int = 1, *, gpus_per_replica: float | None = None,
               cpus_per_replica: float = 1.0) -> Any:
    """The Ray Serve application: ``replicas`` replicas of the app for ``settings``. ``gpus_per_replica``:
    ``None`` gives each replica one GPU when the connected cluster has GPUs, else none."""
    try:
        import ray
        from ray import serve
    except ImportError as error:
        raise DependencyError("Ray Serve replicas need ray[serve]: pip install 'ovoz[ray]'.") from error

    if replicas < 1:
        raise ConfigError(f"replicas={replicas}: give at least 1 (--ray-replicas).")
    if gpus_per_replica is None:
        gpus_per_replica = 1.0 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    wrapped = serve.ingress()(OvozReplica)
    return serve.deployment(
        wrapped, name=DEPLOYMENT, num_replicas=replicas,
        ray_actor_options={"num_gpus": gpus_per_replica, "num_cpus": cpus_per_replica},
        # ovoz admits up to max_requests per replica (and answers 429 past it); Ray must not queue below that.
        max_ongoing_requests=settings.max_requests,
    ).bind(settings)


def run_replicas(settings: ServeSettings, replicas: int, *, address: str | None = None,
                 gpus_per_replica: float | None = None, cpus_per_replica: float = 1.0,
                 blocking: bool = True) -> Any:
    """Serve ``replicas`` replicas on ``settings.host``/``settings.port`` through Ray Serve's proxy. Connects to
    ``address`` (else ``RAY_ADDRESS``, else a new local cluster) unless this process is connected already.
    ``blocking``: serve until Ctrl-C, then shut the application down; else return its handle."""
    try:
        import ray
        from ray import serve
    except ImportError as error:
        raise DependencyError("ovoz serve --ray-replicas needs ray[serve]: pip install 'ovoz[ray]'.") from error

    if not ray.is_initialized():
        ray.init(address=address or None)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    app = deployment(settings, replicas, gpus_per_replica=gpus_per_replica, cpus_per_replica=cpus_per_replica)
    logger.info("serving %d replicas on http://%s:%d", replicas, settings.host, settings.port)
    if not blocking:
        return serve.run(app, name=DEPLOYMENT, route_prefix="/")
    try:
        serve.run(app, name=DEPLOYMENT, route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        logger.info("interrupted: stopping the replicas")
    finally:
        serve.delete(DEPLOYMENT)
    return None


_BUILDER_ARGS = ("replicas", "gpus_per_replica", "cpus_per_replica")


def app_builder(args: Mapping[str, str]) -> Any:
    """For Ray's CLI: ``serve run ovoz.scale.serve:app_builder replicas=2 base=/models/e4b batch_size=64``.

    ``args``: ``replicas`` (default 1), ``gpus_per_replica`` (default: 1 on a cluster with GPUs, else 0),
    ``cpus_per_replica`` (default 1), and any :class:`ServeSettings` field, parsed as its ``OVOZ_*`` variable is;
    the ``OVOZ_*`` environment applies underneath."""
    import dataclasses
    import os

    fields = {f.name for f in dataclasses.fields(ServeSettings)}
    unknown = sorted(set(args) - fields - set(_BUILDER_ARGS))
    if unknown:
        raise ConfigError(f"serve run ovoz.scale.serve:app_builder: unknown argument(s) {', '.join(unknown)}; "
                          f"give {', '.join(_BUILDER_ARGS)} or ServeSettings fields ({', '.join(sorted(fields))}).")
    environ = {**os.environ, **{env_name(k): str(v) for k, v in args.items() if k in fields}}
    settings = ServeSettings.from_env(environ)
    try:
        gpus = float(args["gpus_per_replica"]) if "gpus_per_replica" in args else None
        return deployment(settings, int(args.get("replicas", 1)), gpus_per_replica=gpus,
                          cpus_per_replica=float(args.get("cpus_per_replica", 1.0)))
    except ValueError as error:
        raise ConfigError(f"serve run ovoz.scale.serve:app_builder: {error}") from error
