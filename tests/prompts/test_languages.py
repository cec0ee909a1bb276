"""Prompt language is a setting: describe* templates have Chinese variants, chosen for Chinese datasets
under `auto`, pinned by `en`/`zh`; the chosen template is the prompt's name; the render carries the
dataset language and (only with T) the transcript for backends that read no prose."""

from __future__ import annotations

import pytest

from affectbench.core.errors import ConfigError
from affectbench.core.specs import RunSpec
from affectbench.core.types import Sample
from affectbench.prompts import list_prompts, load_prompt, localized_name
from tests.prompts._infos import MOSI, SIMS

DESCRIBE = [n for n in list_prompts() if n.startswith("describe") and not n.endswith("_zh")]


@pytest.mark.parametrize("name", DESCRIBE)
def test_every_describe_template_has_a_chinese_variant_chosen_by_auto(name):
    assert localized_name(name, SIMS) == f"{name}_zh"
    assert localized_name(name, SIMS, "en") == name
    assert localized_name(name, MOSI) == name  # an English dataset keeps the English template
    p = load_prompt(name, SIMS, "auto")
    assert p.name == f"{name}_zh" and p.language == "zh" and p.kind == "elicit"
    text = p.render(Sample("s1", "我真的很开心", None, media={"video": "v.mp4"}), SIMS, modalities="TAV")[-1].text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("我真的很开心", ""))  # instructions in Chinese


def test_missing_variant_is_an_error_only_when_pinned():
    assert localized_name("sentiment_score", SIMS) == "sentiment_score"  # auto: no zh variant, English
    with pytest.raises(ConfigError, match="sentiment_score_zh"):
        localized_name("sentiment_score", SIMS, "zh")
    with pytest.raises(ConfigError, match="prompt language"):
        localized_name("describe", SIMS, "fr")


def test_render_carries_language_and_transcript_only_with_text():
    p = load_prompt("describe", SIMS, "auto")
    sample = Sample("s1", "还行吧", None, media={"video": "v.mp4"})
    with_t = p.render(sample, SIMS, modalities="TAV")[-1].parts[-1].data
    without_t = p.render(sample, SIMS, modalities="AV")[-1].parts[-1].data
    assert with_t == {"language": "zh", "transcript": "还行吧"}
    assert without_t == {"language": "zh", "transcript": None}


def test_auto_prompt_language_keeps_run_ids():
    spec = RunSpec(dataset={"name": "sims"}, model={"backend": "scripted"})
    assert "prompt_language" not in spec.identity()
    pinned = spec.model_copy(update={"prompt_language": "en"})
    assert pinned.identity()["prompt_language"] == "en" and pinned.run_id != spec.run_id
