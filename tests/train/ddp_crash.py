"""``ovoz train`` (the CLI's ``main``) that dies like a crashed machine once the checkpoint at ``--crash-after-step``
is written: every process waits until all have saved, then rank 0 is killed with SIGKILL (torchrun then stops the
other ranks). Run under torchrun by tests/train/test_ddp.py; every other argument goes to ``ovoz train``."""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    index = argv.index("--crash-after-step")
    crash_step = int(argv[index + 1])
    argv = argv[:index] + argv[index + 2:]

    import ovoz.train.trainer as trainer_module
    from ovoz.cli import main as cli_main

    make = trainer_module.make_trainer_class

    def crashing_trainer_class():
        import torch.distributed as dist
        from transformers import TrainerCallback

        trainer_class, epoch_limit = make()

        class Crash(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == crash_step:
                    if dist.is_initialized():
                        dist.barrier()  # every rank's part of the checkpoint is on disk
                    if int(os.environ.get("RANK", "0")) == 0:
                        sys.stderr.write(f"crashing after the checkpoint at step {crash_step}\n")
                        sys.stderr.flush()
                        os.kill(os.getpid(), signal.SIGKILL)

        class CrashingTrainer(trainer_class):
            def __init__(self, *args, callbacks=None, **kwargs):
                super().__init__(*args, callbacks=[*(callbacks or []), Crash()], **kwargs)

        return CrashingTrainer, epoch_limit

    trainer_module.make_trainer_class = crashing_trainer_class
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
