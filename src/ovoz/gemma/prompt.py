"""The trained prompt, rendered without any tokenizer (pure).

The seed adapter was trained on Gemma 4's chat format with a system turn, a user turn holding the audio
then the instruction, and the model's answer. ``render_prompt`` reproduces it character for character.
"""

from __future__ import annotations

from ..types import SYSTEM_PROMPT, USER_PROMPT

BOS = "<bos>"
EOS = "<eos>"
PAD = "<pad>"
TURN_START = "<|turn>"
TURN_END = "<turn|>"
AUDIO = "<|audio|>"
"""The one placeholder the chat template emits per clip; the processor expands it."""
AUDIO_START = "<|audio>"
AUDIO_END = "<audio|>"

STOP_TOKENS = (TURN_END, EOS)
"""Decoded stops at the end of the model's turn or at end-of-sequence."""


def render_prompt(system: str = SYSTEM_PROMPT, user: str = USER_PROMPT) -> str:
    """The trained generation prompt: system turn, user turn (audio, then instruction), open model turn."""
    return (
        f"{BOS}{TURN_START}system\n{system}{TURN_END}\n"
        f"{TURN_START}user\n{AUDIO}{user}{TURN_END}\n"
        f"{TURN_START}model\n"
    )


def render_answer(transcript: str) -> str:
    """What the model is trained to produce after the prompt."""
    return f"{transcript}{TURN_END}"


def chat_messages(system: str = SYSTEM_PROMPT, user: str = USER_PROMPT) -> list[dict]:
    """The same prompt as chat messages, for tokenizers' ``apply_chat_template``."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": user}]},
    ]
