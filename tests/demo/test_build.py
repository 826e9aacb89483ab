"""The demo model's builder: a BPE tokenizer trained on Uzbek text with Gemma 4's special tokens, a small config."""

from __future__ import annotations

from ovoz.demo.build import AUDIO, TEXT, save_demo_folder, train_tokenizer, training_text
from ovoz.gemma.testing import SPECIAL_TOKENS

SENTENCES = ["Bugun havo juda yaxshi.", "Toshkent katta shahar.", "Men 25 ta kitob o‘qidim.",
             "Bolalar maktabga ketishdi.", "Qishda qor ko'p yog'adi."] * 20


def test_tokenizer_keeps_gemma_special_tokens_and_template_and_learns_merges():
    tokenizer = train_tokenizer(training_text(SENTENCES), vocab_size=400)
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == index
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 1 and tokenizer.bos_token_id == 2
    text = "bugun havo juda yaxshi"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text and len(ids) < len(text.encode()) // 2  # merges were learned
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": [{"type": "audio"}]}], tokenize=False,
                                             add_generation_prompt=True)
    assert rendered.startswith("<bos><|turn>user\n<|audio|>") and rendered.endswith("<|turn>model\n")


def test_training_text_leaves_dev_and_test_sentences_out():
    from ovoz.data.synth import SynthOptions, clean_sentence, split_of

    options = SynthOptions()
    lines = training_text(SENTENCES)
    held = [s for s in set(SENTENCES) if split_of(clean_sentence(s), options.dev_fraction, options.test_fraction)
            != "train"]
    from ovoz.text import get_normalizer

    normalize = get_normalizer("normalized")
    assert not {normalize(clean_sentence(s)) for s in held} & set(lines)


def test_demo_folder_is_small_enough_to_ship(tmp_path):
    import json

    import ovoz

    folder = save_demo_folder(tmp_path / "demo", SENTENCES, vocab_size=400)
    config = json.loads((folder / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == TEXT["hidden_size"]
    assert config["audio_config"]["num_hidden_layers"] == AUDIO["num_hidden_layers"]
    model = ovoz.load(base=folder, adapter=None, device="cpu", dtype="float32")
    parameters = sum(p.numel() for p in model.model.parameters())
    assert parameters * 2 < 15e6  # bf16 bytes: under 15 MB even with the 2,048-token vocabulary (+ its rows)
