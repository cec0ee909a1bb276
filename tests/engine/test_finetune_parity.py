"""Parity by construction: a fine-tune recipe trains on the inputs its adapter is evaluated with
(prompt, media, system prompt, knowledge sources, knowledge policy), or planning names the field."""

from __future__ import annotations

import pytest
import yaml

from affectbench.config import plan_experiment
from affectbench.core.errors import ConfigError

EVAL = {
    "prompt": "cot",
    "media": {"modalities": "TA", "fps": 1.0, "max_frames": 8},
    "generation": {"system_prompt": "You are a careful rater."},
    "knowledge": ["experts"],
    "knowledge_policy": "mask",
}


def _exp(ft_extra: dict) -> str:
    return yaml.safe_dump(
        {
            "workspace": "ws",
            "defaults": {"dataset": {"name": "mosi", "root": "/data/mosi"}, "split": "test"},
            "runs": [
                {"name": "experts", "kind": "knowledge", "model": {"backend": "experts"}, "prompt": "describe"},
                {
                    "name": "other",
                    "kind": "knowledge",
                    "model": {"backend": "experts"},
                    "prompt": "describe",
                    "limit": 3,
                },
                {"name": "sft", "kind": "finetune", "model": "self", "finetune": {"epochs": 1}, **ft_extra},
                {"name": "use", "model": {"backend": "scripted", "adapter": "sft"}, **EVAL},
            ],
        }
    )


def _pair(plan):
    ev = next(r for r in plan.runs if r.run_id in plan.names["use"])
    ft = next(r for r in plan.runs if r.kind == "finetune")
    return ev, ft


def test_recipe_takes_every_parity_field_from_the_eval_run():
    ev, ft = _pair(plan_experiment(_exp({})))
    assert ft.prompt == "cot"
    assert ft.media == ev.media and ft.media.modalities == "TA" and ft.media.fps == 1.0 and ft.media.max_frames == 8
    assert ft.generation.system_prompt == "You are a careful rater."
    assert ft.knowledge == ev.knowledge and len(ft.knowledge) == 1
    assert ft.knowledge_policy == "mask"


def test_recipe_takes_the_eval_runs_prompt_language():
    exp = yaml.safe_load(_exp({}))
    exp["runs"][3]["prompt_language"] = "zh"  # the eval run's language reaches its fine-tune
    plan = plan_experiment(yaml.safe_dump(exp))
    ev, ft = _pair(plan)
    assert ev.prompt_language == ft.prompt_language == "zh"


def test_equal_values_written_twice_are_accepted():
    ev, ft = _pair(plan_experiment(_exp({k: v for k, v in EVAL.items()})))
    assert ft.prompt == ev.prompt and ft.media == ev.media and ft.knowledge == ev.knowledge


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"prompt": "default"}, "prompt"),
        ({"prompt_language": "en"}, "prompt_language"),
        ({"media": {"modalities": "TAV"}}, "media.modalities"),
        ({"media": {"fps": 2.0}}, "media.fps"),
        ({"media": {"max_frames": 32}}, "media.max_frames"),
        ({"media": {"max_pixels": 1024}}, "media.max_pixels"),
        ({"media": {"sample_rate": 8000}}, "media.sample_rate"),
        ({"media": {"max_seconds": 5.0}}, "media.max_seconds"),
        ({"generation": {"system_prompt": "Be brief."}}, "generation.system_prompt"),
        ({"knowledge": []}, "knowledge"),
        ({"knowledge": ["other"]}, "knowledge"),
        ({"knowledge": ["experts", "other"]}, "knowledge"),
        ({"knowledge_policy": "keep"}, "knowledge_policy"),
    ],
)
def test_a_differing_field_is_refused_by_name(extra, field):
    with pytest.raises(ConfigError) as e:
        plan_experiment(_exp(extra))
    msg = str(e.value)
    assert f"fine-tune 'sft' sets {field} = " in msg and "'use'" in msg


def test_settings_that_do_not_reach_the_prompt_may_differ():
    ev, ft = _pair(plan_experiment(_exp({"generation": {"max_new_tokens": 3}})))
    assert ft.generation.max_new_tokens == 3 and ft.generation.system_prompt == ev.generation.system_prompt
