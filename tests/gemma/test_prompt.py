from ovoz.gemma.prompt import chat_messages, render_answer, render_prompt

TRAINED = (
    "<bos><|turn>system\nYou are an assistant that transcribes speech accurately.<turn|>\n"
    "<|turn>user\n<|audio|>Please transcribe this audio.<turn|>\n<|turn>model\n"
)


def test_prompt_is_the_trained_format_character_for_character():
    assert render_prompt() == TRAINED


def test_answer_ends_the_model_turn():
    assert render_answer("salom dunyo") == "salom dunyo<turn|>"


def test_chat_template_of_the_test_tokenizer_renders_the_same(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    rendered = tokenizer.apply_chat_template(chat_messages(), tokenize=False, add_generation_prompt=True)
    assert rendered == TRAINED
