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
    prompt = jinja2.Template(template).render(messages=[{"role": "user", "content": "Is it sarcastic?"}], add_generation_prompt=True)
    assert opens_reasoning(prompt) is opened


def test_split_keeps_the_text_after_the_last_closing_tag():
    assert split_answer("The words sound negative.\n</think>\n\nPositive", True) == ("Positive", "The words sound negative.")
    assert split_answer("<think>a</think>b</think>joy", False) == ("joy", "a</think>b")
    assert split_answer("◁think▷calm◁/think▷neutral", False) == ("neutral", "calm")


def test_an_opened_block_that_never_closes_leaves_no_answer():
    assert split_answer("The voice is tense, maybe anger", True) == ("", "The voice is tense, maybe anger")
    assert split_answer("anger", False) == ("anger", None)  # no reasoning opened: the text is the answer
