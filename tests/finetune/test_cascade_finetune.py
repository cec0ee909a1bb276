"""The cascade fine-tune path (the demo's GKP+SFT: LoRA on the cascade's Gemma3 text LLM), on a tiny
random Gemma3 checkpoint: answer-only training lowers the loss, long prompts are cut from the left, and
the adapter changes the cascade's score-mode answers when an eval run names it."""

from __future__ import annotations

import pytest

from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.finetune import run_finetune
from tests._tiny import tiny_gemma3_checkpoint
from tests.finetune._fixtures import WORDS, dataset_ref, write_corpus

pytest.importorskip("peft")


def test_cascade_lora_trains_truncates_and_its_adapter_changes_scores(tmp_path):
    corpus = [f"This is {w}. positive negative sentiment" for ws in WORDS.values() for w in ws] * 3
    llm = str(tiny_gemma3_checkpoint(tmp_path / "gemma", corpus))
    model = {
        "backend": "cascade",
        "name": llm,
        "options": {"experts": ["lexicon"], "cache_dir": str(tmp_path / "cues")},
    }
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 12, "valid": 4, "test": 6}))
    ft = FinetuneSpec(epochs=3, lr=2e-2, batch_size=4, rank=4, alpha=8, dropout=0.0, max_length=40)
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    spec = RunSpec(kind="finetune", dataset=ds, model=model, media={"modalities": "T"}, finetune=ft)
    rec = run_finetune(store, spec)
    assert rec.status == "done"
    m = rec.metrics
    valid = store.train_logs(rec.id, "valid")
    assert [v["epoch"] for v in valid] == [1.0, 2.0, 3.0] and valid[-1]["loss"] < valid[0]["loss"]
    assert m["last_train_loss"] < m["first_train_loss"]

    # pairs longer than 40 tokens (as Gemma's tokenizer counts the rendered prompt + answer) lost their start
    from transformers import AutoTokenizer

    from affectbench.datasets import load_dataset
    from affectbench.finetune.pairs import pairs_for_spec
    from affectbench.models import build_model

    cascade = build_model(spec.model, spec.media)
    tok = AutoTokenizer.from_pretrained(llm)
    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    pairs = pairs_for_spec(spec, dataset, "train", {}).pairs + pairs_for_spec(spec, dataset, "valid", {}).pairs
    lengths = [
        len(
            tok(
                cascade.llm_prompt(cascade.prepare(p.conversation), spec.generation) + p.answer + tok.eos_token,
                add_special_tokens=False,
            )["input_ids"]
        )
        for p in pairs
    ]
    assert m["truncated"] == sum(n > 40 for n in lengths) > 0

    gen = {"mode": "score"}
    zs = runner.run(RunSpec(dataset=ds, model=model, media={"modalities": "T"}, generation=gen))
    sft = runner.run(RunSpec(dataset=ds, model={**model, "adapter": rec.id}, media={"modalities": "T"}, generation=gen))
    runner.close()
    assert sft.env["fingerprint"] != zs.env["fingerprint"]
    scores = lambda rid: [p.meta["scores"] for p in store.predictions(rid)]  # noqa: E731
    assert scores(sft.id) != scores(zs.id)
