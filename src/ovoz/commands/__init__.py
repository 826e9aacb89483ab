"""Subcommands of the ``ovoz`` CLI; each module registers its parser and handler."""

from __future__ import annotations

import argparse


def register_all(commands: "argparse._SubParsersAction") -> None:
    from . import dev, transcribe

    transcribe.register(commands)
    dev.register(commands)
