"""Subcommands of the ``ovoz`` CLI; each module registers its parser and handler."""

from __future__ import annotations

import argparse


def register_all(commands: "argparse._SubParsersAction") -> None:
    from . import dev, evaluate, transcribe

    transcribe.register(commands)
    evaluate.register(commands)
    dev.register(commands)
    from . import merge, serve, train

    train.register(commands)
    merge.register(commands)
    serve.register(commands)
    from . import synth

    synth.register(commands)
