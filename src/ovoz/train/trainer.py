"""TRL's ``SFTTrainer`` with ovoz's loss (logits at labelled positions only) and WER/CER on the dev set."""

from __future__ import annotations

import logging
import math
from typing import Any

from .loss import selective_loss

logger = logging.getLogger(__name__)


def make_trainer_class() -> type:
    """Create (lazily: trl is imported here) the trainer class."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState
    from trl import SFTTrainer

    class EpochLimit(TrainerCallback, ExportableState):
        """Stops after ``passes`` full passes over the stream (ovoz passes 1: its stream holds every pass over the
        corpus that the run makes, see ``ovoz.train.data.build_dataset``).

        A streamed corpus has no length: ``max_steps`` is an upper bound computed from the row count, and rows
        dropped while decoding make the stream end earlier. Without this, the trainer would start the stream again.
        """

        def __init__(self, passes: int = 1, done: int = 0) -> None:
            self.passes = passes
            self.done = done

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.done += 1
            if self.done >= self.passes:
                control.should_training_stop = True
            return control

        def state(self) -> dict:
            return {"args": {"passes": self.passes, "done": self.done}, "attributes": {}}

    class TimeLimit(TrainerCallback):
        """Stops training once ``seconds`` have passed since the first step began (``max_time_s``)."""

        def __init__(self, seconds: float) -> None:
            self.seconds = seconds
            self.started: float | None = None

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            import time

            self.started = self.started or time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            import time

            if self.started is not None and time.monotonic() - self.started >= self.seconds:
                logger.info("max_time_s=%g reached at step %d: stopping", self.seconds, state.global_step)
                control.should_training_stop = True
            return control

    class OvozSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss skips unlabelled logits and whose evaluation also decodes the dev set."""

        def __init__(self, *args: Any, ovoz_config: Any = None, eval_clips: Any = None,
                     selective: bool = True, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if selective:
                # Gemma 4 declares ``accepts_loss_kwargs = False``, so the trainer would leave
                # ``num_items_in_batch`` out: each micro-batch's loss would be its own token mean, averaged over
                # the accumulation steps and (by DDP) over the processes. Batches of different token counts then
                # weigh alike, and 1 x 16, 2 x 8 and 8 x 2 accumulation train differently. ovoz's loss takes
                # the count itself (the model's forward never sees it): with this, the trainer counts the labelled
                # tokens of the whole optimizer step over every process, and the loss is their sum over that count.
                self.model_accepts_loss_kwargs = True
            self.ovoz_config = ovoz_config
            self.eval_clips = eval_clips  # callable -> iterator of {"id", "audio", "text"}
            self.selective = selective
            self.ovoz_eval_history: list[dict[str, float]] = []

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            from ..gemma.features import with_features

            inputs = with_features(self.processing_class.feature_extractor, inputs)  # a no-op for processor features
            if self.selective:
                loss, _ = selective_loss(model, inputs, num_items_in_batch=num_items_in_batch)
            else:  # the model's own loss (e.g. Unsloth's fused cross-entropy)
                outputs = model(**inputs, num_items_in_batch=num_items_in_batch) if num_items_in_batch is not None \
                    else model(**inputs)
                loss = outputs.loss
            if (self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs
                    and num_items_in_batch is not None):
                loss = loss * self.accelerator.num_processes  # the trainer averages gradients over processes
            return (loss, {"loss": loss}) if return_outputs else loss

        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None,
                     metric_key_prefix: str = "eval") -> dict[str, float]:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix) if (
                eval_dataset is not None or self.eval_dataset is not None) else {}
            if self.eval_clips is not None:
                scores = self.score_dev()
                named = {f"{metric_key_prefix}_{key}": value for key, value in scores.items()}
                self.log(named)
                metrics.update(named)
                self.ovoz_eval_history.append({"step": self.state.global_step, **named})
            return metrics

        def score_dev(self) -> dict[str, float]:
            """Transcribe the dev clips (shared out over processes) through the same Transcriber path and guards as
            ``ovoz eval`` (token cap by duration, repetition guard, silence check), and score them with
            ovoz.eval.metrics."""
            import torch

            from ..eval.metrics import score
            from ..gemma.decoder import GemmaDecoder
            from ..gemma.loading import ModelInfo
            from ..transcriber import Transcriber
            from ..types import SAMPLE_RATE, TranscribeOptions

            config = self.ovoz_config
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            rank, world = self.args.process_index, self.args.world_size
            pairs: list[tuple[str, str]] = []
            batch: list[dict] = []
            # Plain generate: the training model's weights change every step, so no static engine (its cache and
            # CUDA graphs) is kept over them.
            info = ModelInfo(str(config.base), None, str(model.device), str(model.dtype).removeprefix("torch."), None)
            transcriber = Transcriber(GemmaDecoder(model, self.processing_class, info, engine="generate"))
            options = TranscribeOptions(max_new_tokens=config.eval_max_new_tokens, batch_size=config.eval_batch_size,
                                        system_prompt=config.system_prompt, user_prompt=config.user_prompt)

            def flush() -> None:
                outcomes = transcriber.transcribe_batch([(e["audio"], SAMPLE_RATE) for e in batch], options=options)
                for example, outcome in zip(batch, outcomes):
                    if isinstance(outcome, Exception):
                        logger.warning("dev clip failed (scored as empty): %s", outcome)
                    pairs.append((example["text"], "" if isinstance(outcome, Exception) else outcome.text))
                batch.clear()

            with torch.no_grad():
                for index, example in enumerate(self.eval_clips()):
                    if index % world != rank:
                        continue
                    batch.append(example)
                    if len(batch) == config.eval_batch_size:
                        flush()
                if batch:
                    flush()
            if was_training:
                model.train()
            if world > 1 and torch.distributed.is_initialized():
                gathered: list[Any] = [None] * world
                torch.distributed.all_gather_object(gathered, pairs)
                pairs = [pair for part in gathered for pair in part]
            if not pairs:
                logger.warning("the dev set gave no clips to score")
                return {}
            report = score(pairs, config.eval_normalizer)
            wer, cer = report.wer, report.cer
            logger.info("dev: WER %.2f%%, CER %.2f%% over %d clips (%s)", 100 * wer, 100 * cer,
                        len(report.utterances), report.normalizer)
            return {"wer": wer if math.isfinite(wer) else float("nan"),
                    "cer": cer if math.isfinite(cer) else float("nan"), "n_clips": float(len(report.utterances))}

    OvozSFTTrainer.TimeLimit = TimeLimit
    return OvozSFTTrainer, EpochLimit
