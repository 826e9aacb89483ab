"""Corpus transcription on Ray Data: ovoz's runner mapped over a pool of actors, one model per actor.

The driver lists the inputs (:func:`ovoz.io.expand_inputs`) and what is left to do (:func:`ovoz.runner.pending_items`,
the local runner's rule: an input is done when all its outputs exist), and hands the pending inputs' paths to
``Dataset.map_batches`` over an ``ActorPoolStrategy`` pool of :class:`CorpusWorker` actors. Each actor loads the
model once and, for each batch of inputs, decodes them as the local runner does (``runner.transcribe_together``:
shared batches, a failed batch redone input by input), writes every input's outputs atomically under the same
names (``runner.output_paths``, ``runner.write_outputs``), and then writes one index shard for the batch.

Guarantees:

- **Idempotent.** A re-run skips every input whose outputs all exist, as the local runner does; ``overwrite``
  redoes them.
- **A killed actor loses nothing and duplicates nothing.** Ray restarts the actor and retries its batch
  (``max_restarts=-1``, ``max_task_retries``). The retry rewrites the same output files (atomic replace: a file is
  complete or absent, never half-written) and the same index shard: a shard is named by a hash of its batch's
  inputs, and a retried batch holds the same inputs, so it replaces its shard instead of adding one.
- **A bad input never fails the job.** Its error is caught per input and written to the index (``status:
  failed``) and the run summary. A batch whose actor dies ``max_task_retries + 1`` times (an input that crashes the
  process itself) is given up and its inputs reported failed; the other batches go on.

The index (:data:`INDEX_DIR` under the output folder) is a folder of JSONL shards, one row per input: ``stem``
(the output name), ``source``, ``id``, ``status`` (``done`` | ``failed``), ``error``, ``audio_s``, ``outputs``,
``worker``, ``run_id``, ``finished_at``. Shards are never rewritten by a later run: a re-run that redoes an input
(it failed before, or ``overwrite``) writes a newer row for it, and :func:`read_index` keeps the newest row of
each input. Inputs whose outputs all exist but whose newest row is missing (a driver killed between the two) or says
``failed`` (an actor that died after writing them, in a batch that was given up) get a ``done`` row
(``worker: "driver"``) when the next run finds them.

Inputs and the output folder must be paths every node of the cluster sees (one machine, or a shared file
system): actors read the audio and write the outputs themselves, so no audio passes through Ray's object store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DependencyError
from ..io import InputItem, atomic_write
from ..runner import RunSummary, failure_reason, output_paths, pending_items, transcribe_together, write_outputs
from ..types import TranscribeOptions

logger = logging.getLogger(__name__)

INDEX_DIR = "_ovoz_index"
"""The index's folder under the output folder."""
FAULT_ENV = "OVOZ_RAY_FAULT"
"""Fault injection for tests: ``<stem>:<marker file>`` makes the actor that has just written the outputs of the
input ``<stem>`` kill its own process (``os._exit``), once: it creates the marker first, and a marker that exists
disarms it. ``<stem>:`` (no marker) kills it every time. Read by the driver and handed to the actors."""


@dataclass(frozen=True)
class RayOptions:
    """How a corpus job uses the cluster."""

    address: str | None = None
    """The cluster: ``auto``, ``ray://host:10001``, ``host:6379``; ``None``: ``RAY_ADDRESS`` if set, else a
    local cluster of this machine. Ignored when this process is already connected (``ray.init`` done)."""
    actors: int | None = None
    """Actors, one model each. ``None``: one per GPU of the cluster (``gpus_per_actor`` each), or 1 without GPUs."""
    gpus_per_actor: float | None = None
    """``None``: 1 when the cluster has GPUs, else 0 (CPU actors)."""
    cpus_per_actor: float = 1.0
    inputs_per_batch: int = 16
    """Inputs handed to an actor at once: the unit of retry and of index shards. Within it the model decodes
    ``TranscribeOptions.batch_size`` inputs together, as the local runner does."""
    max_task_retries: int = 3
    """Times a batch is retried after its actor died, before its inputs are reported failed."""

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise ConfigError(f"ray actors={self.actors}: give at least 1 (--ray-actors).")
        if self.gpus_per_actor is not None and self.gpus_per_actor < 0:
            raise ConfigError(f"ray gpus_per_actor={self.gpus_per_actor}: give 0 or more (--ray-gpus-per-actor).")
        if self.inputs_per_batch < 1:
            raise ConfigError(f"ray inputs_per_batch={self.inputs_per_batch}: give at least 1 (--ray-batch).")
        if self.max_task_retries < 0:
            raise ConfigError(f"ray max_task_retries={self.max_task_retries}: give 0 or more.")


def transcribe_corpus(
    items: list[InputItem],
    *,
    formats: tuple[str, ...],
    output_dir: Path,
    options: TranscribeOptions,
    load_kwargs: dict[str, Any],
    ray_options: RayOptions | None = None,
    overwrite: bool = False,
    subtitle_options: Any = None,
) -> RunSummary:
    """Transcribe ``items`` on a Ray cluster into ``output_dir``: the outputs the local runner writes, under the
    same names, plus the index (see the module's docstring). ``load_kwargs``: :func:`ovoz.load`'s arguments,
    used by every actor. Returns the run's summary; inputs that failed are in ``summary.failed``."""
    if output_dir is None:
        raise ConfigError("a Ray run writes files: give an output folder (--output-dir).")
    ray_options = ray_options or RayOptions()
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:12]
    output_dir = Path(output_dir)
    summary = RunSummary()
    pending = pending_items(items, output_dir, formats, overwrite)
    pending_ids = {id(item) for item in pending}
    indexed = {_key(row) for row in read_index(output_dir) if row["status"] == "done"}
    driver_rows = []
    for item in items:
        if id(item) in pending_ids:
            continue
        summary.skipped.append(str(item.source))
        if _key(_row(item, "done", None, run_id)) not in indexed:  # outputs written, the row lost (or "failed")
            driver_rows.append(_row(item, "done", None, run_id, outputs=list(output_paths(item, output_dir,
                                                                                         formats).values())))
    usable = [item for item in pending if item.error is None]
    for item in pending:
        if item.error is not None:
            driver_rows.append(_row(item, "failed", item.error, run_id))
    _write_shard(output_dir, driver_rows)
    rows = []
    if usable:
        rows = _run_on_ray(usable, formats=formats, output_dir=output_dir, options=options, load_kwargs=load_kwargs,
                           ray_options=ray_options, subtitle_options=subtitle_options, run_id=run_id)
    returned = {row["stem"]: row for row in rows}
    lost = []
    for item in usable:
        if str(item.stem) not in returned:
            reason = (f"{item.source}: its batch was given up after its Ray actor died "
                      f"{ray_options.max_task_retries + 1} times (an input of that batch may crash the process); "
                      "re-run to retry it, or transcribe it alone to find the culprit.")
            lost.append(_row(item, "failed", reason, run_id))
            returned[str(item.stem)] = lost[-1]
    _write_shard(output_dir, lost)
    for item in pending:
        row = returned.get(str(item.stem)) if item.error is None else _row(item, "failed", item.error, run_id)
        if row["status"] == "done":
            summary.done.append(str(item.source))
            summary.audio_s += float(row["audio_s"] or 0.0)
        else:
            logger.error("%s", row["error"])
            summary.failed.append((str(item.source), row["error"]))
    summary.wall_s = time.perf_counter() - started
    return summary


def read_index(output_dir: str | Path) -> list[dict[str, Any]]:
    """The index of ``output_dir``: one row per input (the newest, when runs wrote several), sorted by stem."""
    folder = Path(output_dir) / INDEX_DIR
    newest: dict[tuple, dict[str, Any]] = {}
    for shard in sorted(folder.glob("part-*.jsonl")) if folder.is_dir() else []:
        for line in shard.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            key = _key(row)
            if key not in newest or row["finished_at"] >= newest[key]["finished_at"]:
                newest[key] = row
    return sorted(newest.values(), key=lambda row: (row["stem"], row["source"]))


class CorpusWorker:
    """A Ray Data actor: one model, loaded once; called with batches of inputs (columns ``source``, ``stem``,
    ``id``), it writes their outputs and the batch's index shard and returns the index rows as columns."""

    def __init__(self, load_kwargs: dict[str, Any], options: TranscribeOptions, formats: tuple[str, ...],
                 output_dir: str, subtitle_options: Any, run_id: str, fault: str | None = None) -> None:
        from ..api import load

        self.model = load(**load_kwargs)
        self.options = self.model.resolve_options(options)
        self.formats = tuple(formats)
        self.output_dir = Path(output_dir)
        self.subtitle_options = subtitle_options
        self.run_id = run_id
        self.fault = fault
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from ..audio import probe_duration

        items = [InputItem(Path(str(source)), Path(str(stem)), None, str(id_) or None)
                 for source, stem, id_ in zip(batch["source"], batch["stem"], batch["id"])]
        if hasattr(self.model, "expect_audio"):
            self.model.expect_audio(sum(probe_duration(item.source) or 0.0 for item in items))
        rows = []
        window = self.options.batch_size
        for start in range(0, len(items), window):
            group = items[start : start + window]
            results = transcribe_together(self.model, group, self.options)
            for item in group:
                rows.append(self._finish(item, results[id(item)]))
        _write_shard(self.output_dir, rows)
        return {name: [row[name] for row in rows] for name in _COLUMNS}

    def _finish(self, item: InputItem, outcome: Any) -> dict[str, Any]:
        paths = output_paths(item, self.output_dir, self.formats)
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            write_outputs(outcome, self.formats, paths, subtitle_options=self.subtitle_options)
        except Exception as error:  # noqa: BLE001 - one bad input must not end the job: its row says why
            return _row(item, "failed", failure_reason(item, error), self.run_id, worker=self.name)
        self._maybe_die(item)
        return _row(item, "done", None, self.run_id, audio_s=outcome.duration_s, outputs=list(paths.values()),
                    worker=self.name)

    def _maybe_die(self, item: InputItem) -> None:
        if not self.fault:
            return
        stem, _, marker = self.fault.partition(":")
        if stem == str(item.stem) and not (marker and os.path.exists(marker)):
            if marker:
                Path(marker).write_text(f"{self.name} died after writing {item.stem}\n", encoding="utf-8")
            logger.warning("%s=%s: killing this actor (%s) after %s's outputs", FAULT_ENV, self.fault, self.name,
                           item.stem)
            os._exit(17)


_COLUMNS = ("stem", "source", "id", "status", "error", "audio_s", "outputs", "worker", "run_id", "finished_at")


def _row(item: InputItem, status: str, error: str | None, run_id: str, *, audio_s: float | None = None,
         outputs: Iterable[Path] = (), worker: str = "driver") -> dict[str, Any]:
    return {"stem": str(item.stem), "source": str(item.source), "id": item.id or "", "status": status,
            "error": error or "", "audio_s": audio_s, "outputs": [str(p) for p in outputs], "worker": worker,
            "run_id": run_id, "finished_at": time.time()}


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["stem"], row["source"], row["id"] or ""


def _write_shard(output_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as one shard, named by a hash of their inputs (the same inputs: the same shard, replaced)."""
    if not rows:
        return
    digest = hashlib.sha1("\n".join("\t".join(_key(row)) for row in rows).encode("utf-8")).hexdigest()[:20]
    with atomic_write(Path(output_dir) / INDEX_DIR / f"part-{digest}.jsonl") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _run_on_ray(items: list[InputItem], *, formats, output_dir: Path, options: TranscribeOptions,
                load_kwargs: dict[str, Any], ray_options: RayOptions, subtitle_options: Any,
                run_id: str) -> list[dict[str, Any]]:
    """Map the items over the actor pool; the rows the actors returned (a given-up batch returns none)."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise DependencyError("ovoz transcribe --ray needs Ray Data: pip install 'ovoz[ray]'.") from error

    started_here = not ray.is_initialized()
    if started_here:
        address = ray_options.address or os.environ.get("RAY_ADDRESS") or None
        logger.info("connecting to Ray at %s", address or "a new local cluster")
        ray.init(address=address, log_to_driver=True)
    context = ray.data.DataContext.get_current()
    saved = context.max_errored_blocks
    context.max_errored_blocks = -1  # a given-up batch is reported per input; the other batches go on
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
        gpus = ray_options.gpus_per_actor
        if gpus is None:
            gpus = 1.0 if cluster_gpus >= 1 else 0.0
        actors = ray_options.actors or (max(1, int(cluster_gpus // gpus)) if gpus else 1)
        actors = min(actors, math.ceil(len(items) / ray_options.inputs_per_batch))
        logger.info("Ray: %d inputs in batches of %d over %d actors (%g GPU, %g CPU each)", len(items),
                    ray_options.inputs_per_batch, actors, gpus, ray_options.cpus_per_actor)
        rows_in = [{"source": str(item.source), "stem": str(item.stem), "id": item.id or ""} for item in items]
        dataset = ray.data.from_items(rows_in, override_num_blocks=math.ceil(len(items) / ray_options.inputs_per_batch))
        with warnings.catch_warnings():
            # Ray 2.60's map_batches names no parameter for actor-task retries: it goes in ray_remote_args, which
            # warns that it is deprecated (for 2.64).
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = _map(dataset, ray, actors, gpus, ray_options, {
                "load_kwargs": load_kwargs, "options": options, "formats": tuple(formats),
                "output_dir": str(output_dir), "subtitle_options": subtitle_options, "run_id": run_id,
                "fault": os.environ.get(FAULT_ENV) or None,
            })
        return [_plain(row) for row in mapped.iter_rows()]
    finally:
        context.max_errored_blocks = saved
        if started_here:
            ray.shutdown()


def _map(dataset: Any, ray: Any, actors: int, gpus: float, ray_options: RayOptions,
         constructor: dict[str, Any]) -> Any:
    import inspect

    retries: dict[str, Any] = {"max_restarts": -1,  # a dead actor is restarted (loading its model again) ...
                               "max_task_retries": ray_options.max_task_retries}  # ... and its batch retried
    parameters = inspect.signature(dataset.map_batches).parameters
    if "max_task_retries" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        logger.warning("this Ray's map_batches takes no actor retry limits; Ray's defaults apply (a batch whose "
                       "actor dies is retried without limit)")
        retries = {}
    return dataset.map_batches(
        CorpusWorker,
        batch_size=ray_options.inputs_per_batch,
        # One batch at a time per actor: an actor that dies takes only its own batch down (and its retries).
        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
        num_gpus=gpus,
        num_cpus=ray_options.cpus_per_actor,
        fn_constructor_kwargs=constructor,
        **retries,
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row from Ray (numpy scalars and arrays) as plain Python values."""
    plain = {}
    for name, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        plain[name] = value
    return plain


__all__ = ["FAULT_ENV", "INDEX_DIR", "CorpusWorker", "RayOptions", "read_index", "transcribe_corpus"]
