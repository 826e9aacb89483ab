"""Fine-tuning: the seed recipe as a validated config, a streaming data pipeline, TRL's SFTTrainer.

``import ovoz.train`` stays light; torch, transformers, peft and trl load when :func:`train` runs.
"""

from .config import SAVED_CONFIG_NAME, TrainConfig, load_recipe, resolve_config


def train(config: TrainConfig):
    """Train (or continue) a LoRA adapter; see :func:`ovoz.train.run.train`."""
    from .run import train as _train

    return _train(config)


__all__ = ["SAVED_CONFIG_NAME", "TrainConfig", "load_recipe", "resolve_config", "train"]
