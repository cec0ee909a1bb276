"""Thinking models: whether a chat template opens the reasoning block in the prompt, and the answer
split from the reasoning (the text after the last closing tag), as the hf and vllm backends store it."""

from __future__ import annotations

import jinja2
import pytest

from affectbench.models._chat import opens_reasoning, split_answer

# The generation-prompt tails of published templates: DeepSeek-R1 (tokenizer_config.json since the
# 2025-01 update) and Qwen3 with enable_thinking=false (an empty, closed block); ChatML without thinking.
R1 = "{% for m in messages %}<｜User｜>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
QWEN3_NO_THINK = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n\n</think>\n\n{% endif %}"
)
CHATML = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"


@pytest.mark.parametrize(("template", "opened"), [(R1, True), (QWEN3_NO_THINK, False), (CHATML, False)])
def test_opened_block_is_read_from_the_rendered_template(template, opened):
    prompt = jinja2.Template(template).render(
        messages=[{"role": "user", "content": "Is it sarcastic?"}], add_generation_prompt=True
    )
    assert opens_reasoning(prompt) is opened


def test_split_keeps_the_text_after_the_last_closing_tag():
    assert split_answer("The words sound negative.\n</think>\n\nPositive", True) == (
        "Positive",
        "The words sound negative.",
    )
    assert split_answer("<think>a</think>b</think>joy", False) == ("joy", "a</think>b")
    assert split_answer("◁think▷calm◁/think▷neutral", False) == ("neutral", "calm")


def test_an_opened_block_that_never_closes_leaves_no_answer():
    assert split_answer("The voice is tense, maybe anger", True) == ("", "The voice is tense, maybe anger")
    assert split_answer("anger", False) == ("anger", None)  # no reasoning opened: the text is the answer


# Qwen3's generation-prompt tail (Qwen/Qwen3-8B tokenizer_config.json chat_template, as quoted in
# tyler-griggs/SkyRL skyrl-train/skyrl_train/utils/templates/README.md and the HF blog "The 4 Things
# Qwen-3's Chat Template Teaches Us") and Qwen3-4B-Thinking-2507's (its tokenizer_config.json as
# copied in akougkas/warpio-cli warpio-docs/ai-docs/model_cards/qwen3:4b.md): the thinking-only
# model always opens the block; the hybrid one closes it empty when enable_thinking is false.
QWEN3_HYBRID = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}"
)
QWEN3_THINKING_2507 = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n<think>\\n' }}\n{%- endif %}"
)


def _render(template, **kw):
    msgs = [{"role": "user", "content": "Is it sarcastic?"}]
    return jinja2.Template(template).render(messages=msgs, add_generation_prompt=True, **kw)


def test_closing_an_opened_block_gives_the_family_non_thinking_prompt():
    from affectbench.models._chat import close_reasoning

    thinking = _render(QWEN3_THINKING_2507)
    assert opens_reasoning(thinking)
    assert close_reasoning(thinking) == (_render(QWEN3_HYBRID, enable_thinking=False), True)
    assert not opens_reasoning(close_reasoning(thinking)[0])  # the options now follow a closed block
    # a hybrid template left thinking (no tag in the prompt) and plain ChatML are not touched
    for plain in (_render(QWEN3_HYBRID), _render(CHATML), _render(QWEN3_NO_THINK)):
        assert close_reasoning(plain) == (plain, False)
    r1 = _render(R1)
    assert close_reasoning(r1) == (r1[: -len("<think>\n")] + "<think>\n\n</think>\n\n", True)
    assert close_reasoning("<|assistant|>◁think▷") == ("<|assistant|>◁think▷\n\n◁/think▷\n\n", True)
