"""A fine-tune renders (and records) its prompt in the run's `prompt_language`, as its eval run does."""

from __future__ import annotations

import shutil

from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.store import Store
from affectbench.finetune import finetune_pairs
from tests.finetune._fixtures import dataset_ref, write_corpus

MARK = "请只回答标签。"


def test_finetune_prompt_and_pairs_use_the_runs_prompt_language(tmp_path, monkeypatch):
    import affectbench.prompts as prompts

    # a packaged-templates folder with a Chinese variant of `classify` (none ships today)
    templates = tmp_path / "templates"
    shutil.copytree(prompts.TEMPLATES_DIR, templates)
    text = (templates / "classify.yaml").read_text()
    zh = text.replace("version: classify-1", "version: classify-zh-test").replace(
        "text: |\n", f"text: |\n  {MARK}\n", 1
    )
    (templates / "classify_zh.yaml").write_text(zh)
    monkeypatch.setattr(prompts, "TEMPLATES_DIR", templates)

    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 2, "valid": 0, "test": 0}))
    ft = FinetuneSpec(valid_split=None)
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    for language, name in (("zh", "classify_zh"), ("en", "classify")):
        spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": "x"}, finetune=ft, prompt="classify",
                       media={"modalities": "T"}, prompt_language=language)  # fmt: skip
        prompt, train, _ = finetune_pairs(store, spec)
        assert prompt.name == name  # the prompt recorded with the run (text, fingerprint) ...
        for p in train.pairs:  # ... is the one that rendered the training pairs
            text = "".join(x.text or "" for m in p.conversation for x in m.parts if x.kind == "text")
            assert (MARK in text) == (language == "zh")
