"""``train(config)``: one readable path from a corpus to a PEFT adapter folder with its model card.

Output folder::

    adapter_config.json, adapter_model.safetensors   the adapter (ovoz.load and stock PEFT load it)
                                                      (train_mode=full: config.json, model.safetensors, the
                                                      processor's files: a model folder for --base)
    ovoz_train.yaml                                   the resolved config (what actually ran)
    README.md                                         model card: data, recipe, evaluation numbers
    trainer_state.json                                the log history: loss, learning rate, dev WER/CER by step
    data_report.json                                  rows read / skipped / dropped, one entry per rejected row
    checkpoint-<step>/                                resumable checkpoints (adapter, optimizer, scheduler, RNG)
    runs/                                             TensorBoard logs
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ManifestError
from ..io import check_output_dir
from .config import TrainConfig, check_runnable

logger = logging.getLogger(__name__)

DATA_REPORT_NAME = "data_report.json"


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path
    global_step: int
    train_loss: float | None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    evaluation: list[dict[str, float]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    config: TrainConfig | None = None


def effective_config(config: TrainConfig, device: str) -> TrainConfig:
    """Replace choices this machine cannot honour (8-bit AdamW off CUDA, a missing TensorBoard), with a log line."""
    changes: dict[str, Any] = {}
    if config.optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        has_bnb = importlib.util.find_spec("bitsandbytes") is not None
        if not device.startswith("cuda") or not has_bnb:
            why = "on the CPU" if not device.startswith("cuda") else "without bitsandbytes (pip install 'ovoz[4bit]')"
            logger.info("optimizer %s is not available %s: using adamw_torch", config.optimizer, why)
            changes["optimizer"] = "adamw_torch"
    if "tensorboard" in config.report_to and not (
        importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    ):
        logger.warning("TensorBoard is not installed (pip install 'ovoz[train]'): no TensorBoard logs")
        changes["report_to"] = [name for name in config.report_to if name != "tensorboard"] or ["none"]
    return config.replace(**changes) if changes else config


def use_device_features(setting: str, device: str, processor: Any) -> bool:
    """``device_features``: ``auto`` computes the log-mel features on a CUDA device; ``on`` on any device.

    Either way only where :mod:`ovoz.gemma.features` reproduces the processor (not with dither).
    """
    from ..gemma.features import supported

    wanted = setting == "on" or (setting == "auto" and device.startswith("cuda"))
    if wanted and not supported(processor):
        logger.info("device_features: this feature extractor's settings (dither) are left to the processor")
        return False
    return wanted


def process_device(device: str, local_rank: str | None, n_gpus: int) -> str:
    """The device of this training process. Under ``torchrun`` / ``accelerate launch`` (``LOCAL_RANK`` set) each
    process has its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``, where the model is loaded (the 4-bit base
    included: bitsandbytes' weights cannot be moved after loading) and where DDP expects it. A process given one GPU
    of its own (``CUDA_VISIBLE_DEVICES`` per process) keeps ``cuda``."""
    if local_rank is None or device != "cuda" or int(local_rank) >= n_gpus:
        return device
    return f"cuda:{int(local_rank)}"


def plan_steps(config: TrainConfig, n_rows: int | None, world_size: int) -> int:
    """Optimizer steps of the run: ``max_steps``, or enough for ``epochs`` passes over ``n_rows`` examples."""
    if config.max_steps is not None:
        return config.max_steps
    assert n_rows is not None
    per_step = config.batch_size * config.grad_accum * world_size
    return max(1, math.ceil(n_rows * config.epochs / per_step))


def training_arguments(config: TrainConfig, *, max_steps: int, device: str, bf16: bool, has_eval: bool) -> Any:
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing; 5.17 knows the old name only.
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return SFTConfig(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup,  # transformers 5: a value below 1 is a fraction of the steps
        optim=config.optimizer,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        bf16=bf16,
        seed=config.seed,
        data_seed=config.seed,
        max_steps=max_steps,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        prediction_loss_only=True,
        report_to=config.report_to,
        disable_tqdm=not config.progress_bar,
        dataloader_num_workers=config.dataloader_workers,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=config.max_seq_length,
        packing=False,
        **{checkpointing: config.gradient_checkpointing,
           f"{checkpointing}_kwargs": {"use_reentrant": False}},
        use_cpu=device == "cpu",
        ddp_find_unused_parameters=False,
        save_only_model=False,
    )


def require_examples(config: TrainConfig, dataset: Any, stats: Any) -> None:
    """Raise :class:`ManifestError` when not one training example can be built from ``config.data`` (an empty
    manifest, every row bad, every transcript emptied by normalization); rows are read only until the first."""
    from ..errors import named

    if next(iter(dataset), None) is not None:
        return
    hint = "fix the rows the warnings above name"
    if stats.n_empty_text and stats.n_empty_text == stats.n_rows and config.normalize_text:
        hint = (f"{named('normalize_text', config.normalize_text)} emptied every transcript: choose another "
                "normalizer, or none")
    elif not stats.n_rows and not stats.n_bad_rows:
        hint = "it holds no rows: write one JSON object per line with an audio path and a text"
    raise ManifestError(f"{named('data', config.data)}: nothing to train on, no example could be built "
                        f"({stats.n_bad_rows} unusable rows; {stats.describe()}); {hint}.")


def train(config: TrainConfig) -> TrainResult:
    """Train (or continue) a LoRA adapter as ``config`` says; see the module docstring for the output folder.

    With ``train_mode=full`` the folder holds a whole model (``config.json``, ``model.safetensors``, tokenizer and
    feature extractor) in place of the adapter files: ``ovoz.load(base=folder, adapter=None)`` loads it.
    """
    from ..data import ReadReport
    from ..gemma.loading import resolve_device
    from ..gemma.training import load_for_training, normalize_saved_adapter
    from .card import render_model_card, write_model_card
    from .collator import AudioCollator
    from .data import DataStats, ExampleBuilder, build_dataset, count_rows, load_eval_clips
    from .trainer import make_trainer_class

    check_runnable(config)
    device = resolve_device(None if config.device == "auto" else config.device)
    if device.startswith("cuda"):
        import torch

        device = process_device(device, os.environ.get("LOCAL_RANK"), torch.cuda.device_count())
        if ":" in device:  # before loading: bitsandbytes and lazy CUDA state use the current device
            torch.cuda.set_device(device)
    config = effective_config(config, device)
    output_dir = check_output_dir(config.output_dir, "output_dir")  # a file, read-only: before the model loads
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    read_report = ReadReport()
    n_rows = None
    if config.max_steps is None:
        n_rows = count_rows(config, read_report)
        if read_report.n_skipped:
            logger.warning("%s: %d of %d rows skipped (listed above and in %s)", config.data, read_report.n_skipped,
                           read_report.n_rows, DATA_REPORT_NAME)
        if n_rows == 0:
            raise ManifestError(f"{config.data}: no usable rows ({read_report.n_skipped} of {read_report.n_rows} "
                                "rows were bad; see the warnings above).")
    max_steps = plan_steps(config, n_rows, world_size)

    loaded = load_for_training(config, device)
    stats = DataStats()
    train_dataset = build_dataset(config, ExampleBuilder(config, loaded.processor, stats), world_size=world_size)
    # A typed error here, not TRL's bare StopIteration (nor an endless search of a --max-steps stream): one pass
    one_pass = config.replace(max_steps=None, epochs=1)
    require_examples(config, build_dataset(one_pass, ExampleBuilder(one_pass, loaded.processor, stats)), stats)
    eval_dataset = None
    eval_clips = None
    if config.eval_data is not None:
        eval_builder = ExampleBuilder(config, loaded.processor, DataStats())
        eval_dataset = build_dataset(config, eval_builder, eval=True)

        def eval_clips():
            return load_eval_clips(config, eval_builder)

    collator = AudioCollator(loaded.processor, system=config.system_prompt, user=config.user_prompt,
                             loss_on_prompt=config.loss_on_prompt,
                             features_on_device=use_device_features(config.device_features, device, loaded.processor))
    args = training_arguments(config, max_steps=max_steps, device=device, bf16=loaded.bf16,
                              has_eval=eval_dataset is not None)
    trainer_class, epoch_limit = make_trainer_class()
    # The stream holds every pass (build_dataset): the trainer's first epoch is the whole run.
    callbacks = [epoch_limit(1)] if config.max_steps is None else []
    if config.max_time_s is not None:
        callbacks.append(trainer_class.TimeLimit(config.max_time_s))
    trainer = trainer_class(
        model=loaded.model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        processing_class=loaded.processor, data_collator=collator, callbacks=callbacks or None,
        ovoz_config=config, eval_clips=eval_clips, selective=loaded.backend != "unsloth",
    )
    stats.__init__()  # the trainer peeked at one example while starting; count from the real pass only
    if trainer.is_world_process_zero():
        config.save(output_dir)
    logger.info("training for at most %d steps (%s rows, batch %d x %d accumulation x %d processes)", max_steps,
                n_rows if n_rows is not None else "?", config.batch_size, config.grad_accum, world_size)
    output = trainer.train(resume_from_checkpoint=True if config.resume else None)
    if eval_clips is not None and (not trainer.ovoz_eval_history
                                   or trainer.ovoz_eval_history[-1]["step"] != trainer.state.global_step):
        trainer.evaluate()
    # With dataloader workers the examples are built in worker processes: their counts never reach this one (each
    # dropped example is still logged there). Only the steps trained tell whether any example was built.
    counted = config.dataloader_workers == 0
    built = stats.n_examples > 0 if counted else trainer.state.global_step > 0
    if not built and not config.resume:
        raise ManifestError(f"{config.data}: no example could be built (every row was dropped; see the warnings).")
    if counted:
        logger.info("training data: %s", stats.describe())
    else:
        logger.info("training data: examples were built in %d dataloader workers; their drops are in the log "
                    "above, not counted in %s", config.dataloader_workers, DATA_REPORT_NAME)
    full = config.train_mode == "full"
    if full:  # a whole model folder: loaded later for inference, which wants its KV cache
        trainer.accelerator.unwrap_model(trainer.model).config.use_cache = True
    trainer.save_model(str(output_dir))
    # Bad manifest rows: over the whole corpus when the step count needed a counting pass (epochs); otherwise over
    # the rows this run read (with --max-steps), or unknown (counted in the dataloader workers).
    if n_rows is not None:
        n_bad_rows, bad_rows = read_report.n_skipped, [vars(error) for error in read_report.skipped]
    else:
        n_bad_rows, bad_rows = (stats.n_bad_rows, stats.bad_rows) if counted else (None, None)
    data = {
        "n_rows_read": read_report.n_rows if n_rows is not None else None,
        "n_bad_rows": n_bad_rows,
        **{key: value if counted else None for key, value in stats.to_dict().items()
           if key not in ("rejects", "n_bad_rows", "bad_rows")},
        "hours": stats.audio_s / 3600 if counted else None,
    }
    if trainer.is_world_process_zero():
        if full:
            # The processor as the base folder has it: the trainer's copy carries the collator's padding state
            # in tokenizer.json, which then breaks the processor's own calls at inference.
            from ..gemma.processor import load_processor

            load_processor(loaded.base_folder).save_pretrained(output_dir)
        else:
            normalize_saved_adapter(output_dir, config)
        report = {**data, "bad_rows": bad_rows,
                  "dropped": stats.rejects if counted else None}
        trainer.state.save_to_json(str(output_dir / "trainer_state.json"))  # the loss and dev-score curves
        (output_dir / DATA_REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        training = {"steps": trainer.state.global_step, "train_loss": output.training_loss,
                    "device": device, "processes": world_size, "backend": loaded.backend}
        card = render_model_card(config, base_model=config.base, data=data, training=training,
                                 evaluation=trainer.ovoz_eval_history)
        write_model_card(output_dir, card)
        logger.info("%s, model card and config written to %s", "model" if full else "adapter", output_dir)
    return TrainResult(output_dir, trainer.state.global_step, output.training_loss, list(trainer.state.log_history),
                       list(trainer.ovoz_eval_history), data, config)
