import pytest

from affectbench.config import plan_experiment
from affectbench.core.errors import ConfigError

BASE = """
workspace: ws
defaults:
  dataset: {name: mosi, root: /data/mosi}
  split: test
  limit: 10
runs:
  - name: experts
    kind: knowledge
    model: {backend: experts}
    prompt: describe
  - name: sft
    kind: finetune
    model: self
    knowledge: [experts]
    finetune: {epochs: 1}
  - name: zs
    model: {backend: scripted}
    matrix:
      media.modalities: [T, TAV]
      dataset.name: [mosi, sims]
  - name: gkp_sft
    model: {backend: scripted, adapter: sft}
    knowledge: [experts]
"""


def test_matrix_references_and_order():
    plan = plan_experiment(BASE)
    kinds = [r.kind for r in plan.runs]
    assert kinds.count("eval") == 5
    zs = [r for r in plan.runs if r.run_id in plan.names["zs"]]
    assert {(r.dataset.name, r.media.modalities) for r in zs} == {
        ("mosi", "T"),
        ("mosi", "TAV"),
        ("sims", "T"),
        ("sims", "TAV"),
    }
    gkp = next(r for r in plan.runs if r.run_id in plan.names["gkp_sft"])
    ft = next(r for r in plan.runs if r.kind == "finetune")
    assert gkp.model.adapter == ft.run_id
    assert ft.model.backend == "scripted" and ft.model.adapter is None  # model: self
    # dependencies come first; knowledge covers test (eval) and train/valid (finetune) under one id
    order = [r.run_id for r in plan.runs]
    assert order.index(ft.run_id) < order.index(gkp.run_id)
    know = [r for r in plan.runs if r.kind == "knowledge"]
    assert len({k.run_id for k in know}) == 1
    assert {k.split for k in know} == {"test", "train", "valid"}
    assert ft.knowledge == [know[0].run_id] and gkp.knowledge == [know[0].run_id]
    assert all(k.limit == 10 for k in know)


def test_overrides_apply_to_every_run():
    plan = plan_experiment(BASE, overrides=["limit=3", "exec.batch_size=2", "dataset.root=/x"])
    assert plan.exec.batch_size == 2
    assert all(r.limit == 3 and r.dataset.root == "/x" for r in plan.runs)


@pytest.mark.parametrize(
    "text, needle",
    [
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n    temprature: 0\n",
            r"<experiment>:5: runs\.0\.temprature: unknown key",
        ),
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n    model: {backend: hf}\n",
            r":5: duplicate key 'model'",
        ),
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n    generation: {max_tokens: 3}\n",
            r"generation\.max_tokens: unknown key",
        ),
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n    knowledge: [nope]\n",
            r"references 'nope'",
        ),
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n  - name: a\n    model: {backend: scripted}\n",
            "names must be unique",
        ),
        ("runs: [\n", "not valid YAML"),
        (
            "defaults: {dataset: {name: mosi}}\nruns:\n  - name: a\n    model: {backend: scripted}\n    media: {modalities: TX}\n",
            "modalities",
        ),
        ("- a\n", "a mapping"),
    ],
)
def test_malformed_files_name_the_key_and_line(text, needle):
    with pytest.raises(ConfigError, match=needle):
        plan_experiment(text)


def test_bad_override_is_clear():
    with pytest.raises(ConfigError, match="key=value"):
        plan_experiment(BASE, overrides=["limit"])
