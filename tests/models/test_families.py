"""The family table: every `tested` entry names a real test, remote-code families are documented
as vllm/openai only, `affectbench ls models` shows tested vs documented, recipes carry sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.core.errors import ModelError
from affectbench.core.specs import MediaSpec
from affectbench.models import families

ROOT = Path(__file__).resolve().parents[2]


def test_every_tested_family_names_an_existing_test_and_parameter():
    for f in families.FAMILIES:
        if not f.tested:
            continue
        path, _, node = f.tested.partition("::")
        text = (ROOT / path).read_text()
        if node:
            name, _, param = node.partition("[")
            assert f"def {name}(" in text, f.tested
            if param:
                assert f'"{param.rstrip("]")}"' in text, f.tested


def test_remote_code_families_are_documented_for_vllm_or_openai_only():
    remote = {f.title for f in families.FAMILIES if f.remote_code}
    assert remote == {"MiniCPM-o", "Baichuan-Omni", "Ola", "VideoLLaMA2-AV", "HumanOmni"}
    assert all(f.runs_on != "hf" and not f.tested for f in families.FAMILIES if f.remote_code)


def test_ls_models_shows_tested_and_documented():
    out = CliRunner().invoke(app, ["ls", "models"]).output
    assert re.search(r"Gemma 3n\s+video: frames .*tested: tiny real architecture", out)
    assert re.search(r"Phi-4-multimodal\s+video: frames batch: single tested", out)
    assert re.search(r"MiniCPM-o .*documented \(vllm / openai; remote code\)", out)
    assert re.search(r"Voxtral .*documented \(hf\)", out)
    assert "how: vLLM 0.32 implements it" in out  # MiniCPM-o: how to run it


def test_family_of_config_and_recipe_application():
    assert families.family_of({"model_type": "gemma3n"}).key == "gemma3n"
    assert families.family_of({"model_type": "qwen2_5_omni_thinker"}).key == "qwen2_5_omni"
    assert families.family_of({"model_type": "llama"}) is families.GENERIC
    phi = families.family_of({"model_type": "phi4_multimodal"})
    media = families.effective_media(MediaSpec(), phi.recipe)
    assert (media.max_frames, media.max_pixels, media.fps) == (8, 448 * 448, MediaSpec().fps)
    assert families.effective_media(MediaSpec(max_pixels=1000), phi.recipe).max_pixels == 1000
    with pytest.raises(ModelError, match="video must be"):
        families.recipe_for(phi, {"video": "audio"})


def test_every_recipe_value_has_a_source():
    for f in families.FAMILIES:
        r = f.recipe
        set_fields = [k for k in (*families.Recipe.MEDIA_FIELDS, "system_prompt") if getattr(r, k) is not None]
        for k in set_fields:
            assert k in r.sources or "video" in r.sources, (f.key, k)


def test_add_special_tokens_only_when_the_template_did_not_write_bos():
    class Tok:  # test double: a tokenizer's bos_token attribute
        bos_token = "<bos>"

    assert families.add_special_tokens(Tok(), ["<bos><start_of_turn>user"]) is False
    assert families.add_special_tokens(Tok(), ["<start_of_turn>user"]) is True
    Tok.bos_token = None
    assert families.add_special_tokens(Tok(), ["<|im_start|>"]) is True


def test_batch_policy():
    assert families.batches(families.family_of({"model_type": "phi4_multimodal"}), [[]] * 3) == [[0], [1], [2]]
    text = [[]] * 3  # conversations without audio: nothing to keep apart
    assert families.batches(families.family_of({"model_type": "gemma3n"}), text) == [[0, 1, 2]]


def test_zoo_experiment_plans_every_family_with_its_card_and_ablation():
    import affectbench
    from affectbench.analysis.model_cards import card_for
    from affectbench.config import load_experiment

    plan = load_experiment(Path(affectbench.__file__).parent / "experiments" / "zoo-meld.yaml")
    titles = {f.title: f for f in families.FAMILIES}
    seen = set()
    for r in plan.runs:
        assert r.kind == "eval" and r.dataset.name == "meld"
        card = card_for(r.model)
        assert card is not None, r.model.name
        fam = titles[card.family]
        seen.add(fam.key)
        assert set(r.media.modalities) <= set(card.modalities)
        assert (r.model.backend == "hf") == (fam.runs_on == "hf")  # remote code never in-process
    tested = {f.key for f in families.FAMILIES if f.tested} - {"qwen2_vl"}  # Qwen2-VL: superseded by 2.5
    assert tested <= seen and "minicpmo" in seen
