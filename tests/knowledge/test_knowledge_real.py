"""Knowledge from real models on generated clips: the cascade's Gemma describes the clip (`self`),
the perception models write cues (`experts`), and both reach the final prompt. Slow: real weights."""

from __future__ import annotations

import pytest

from affectbench.config import plan_experiment
from affectbench.datasets.demo import write_demo
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store

pytestmark = pytest.mark.slow

EXPERIMENT = """
workspace: ws
defaults:
  dataset: {{name: demo, root: {root}}}
  split: test
  limit: 2
  model: {{backend: cascade}}
  generation: {{mode: score, max_new_tokens: 24}}
runs:
  - name: self
    kind: knowledge
    model: self
    prompt: describe
    generation: {{mode: generate, max_new_tokens: 24}}
  - name: experts
    kind: knowledge
    model: {{backend: experts}}
    prompt: describe
  - name: zeroshot
  - name: gkp_both
    knowledge: [self, experts]
"""


def test_self_and_experts_knowledge_from_real_models_reach_the_prompt(tmp_path):
    root = write_demo(tmp_path / "demo", n=6, seed=1)
    plan = plan_experiment(EXPERIMENT.format(root=root), base_dir=tmp_path)
    store = Store(plan.workspace / "affectbench.sqlite")
    runner = Runner(store, plan.exec, progress=False)
    try:
        for spec in plan.runs:
            runner.run(spec)
        self_id, experts_id = plan.names["self"][0], plan.names["experts"][0]
        zs, gkp = plan.names["zeroshot"][0], plan.names["gkp_both"][0]
        self_texts, expert_texts = store.knowledge(self_id), store.knowledge(experts_id)
        assert len(self_texts) == len(expert_texts) == 2
        assert all(t.strip() for t in self_texts.values())  # Gemma wrote something for every clip
        assert all("face:" in t and "voice:" in t for t in expert_texts.values())
        assert store.run(self_id).metrics["mean_chars"] > 0
        # the knowledge is in the final prompt: more input tokens, different scores
        tokens = {rid: {p.sample_id: p.meta["n_input_tokens"] for p in store.predictions(rid)} for rid in (zs, gkp)}
        assert all(tokens[gkp][s] > tokens[zs][s] for s in tokens[zs])
        scores = {rid: {p.sample_id: p.meta["scores"] for p in store.predictions(rid)} for rid in (zs, gkp)}
        assert any(scores[gkp][s] != scores[zs][s] for s in scores[zs])
        # a rerun generates nothing: stored knowledge rows are untouched
        before = {p.sample_id: p.raw for p in store.predictions(self_id)}
        stamps = store._conn().execute("SELECT MAX(created_at) FROM predictions").fetchone()[0]
        for spec in plan.runs:
            runner.run(spec)
        assert {p.sample_id: p.raw for p in store.predictions(self_id)} == before
        assert store._conn().execute("SELECT MAX(created_at) FROM predictions").fetchone()[0] == stamps
    finally:
        runner.close()
