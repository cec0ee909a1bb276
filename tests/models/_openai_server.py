"""TEST DOUBLE: a small OpenAI-compatible chat server for tests, answering from a tiny random Qwen2 text
model. It is not a real inference server; it stands in for one (vLLM serve, SGLang, ...) in tests only.

Run: python -m tests.models._openai_server --port 0   (prints "PORT <n>" once listening)
Model names steer failure modes: "flaky-<k>" answers 503 to the first k requests, "bad" gets 400
with an error message, "slow" sleeps 3 s, "nologprobs" omits logprobs; "reasoning_content-<text>" /
"reasoning-<text>" answer with `content: null` and the model's text in that field (what vLLM's
reasoning parsers and other servers send); "think-<text>" sends both the model's text as content
and <text> as `reasoning_content`; "runon" keeps the special tokens in its text and writes an invented
turn after <|endoftext|>. A request whose text contains "REJECT-ME" gets 400 (one bad sample).
"media-asis" / "media-resample32" / "media-noaudio" report `usage.prompt_tokens` as a multimodal server
would: text tokens plus the media tokens of transformers' own Qwen2-VL video processor and Qwen2.5-Omni
audio length rule, for the frames sent / for the video re-sampled to 32 frames (what vLLM's server
does unless told otherwise) / with the audio part dropped. `finish_reason` is "length" when max_tokens tokens came out, else "stop". GET /_requests returns
every request body received; every request is answered from 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STATE = {"requests": [], "counts": {}}
LOCK = threading.Lock()


def load_model():
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, os.getcwd())
    from tests._tiny import tiny_tokenizer

    tok = tiny_tokenizer("omni")
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with tempfile.TemporaryDirectory() as d:  # a save/load round trip, like a served checkpoint
        model.save_pretrained(d)
        model = Qwen2ForCausalLM.from_pretrained(d).eval()
    return tok, model


def flatten(messages) -> list[dict]:
    out = []
    for m in messages:
        c = m["content"]
        if isinstance(c, list):
            c = "".join(p.get("text", "") if p["type"] == "text" else f"<{p['type']}>" for p in c)
        out.append({"role": m["role"], "content": c})
    return out


def media_tokens(messages, mode: str) -> int:
    """Media tokens of the video/audio parts, counted by transformers' processors' own rules."""
    import base64
    import io
    import math
    import wave

    import av
    from transformers import Qwen2VLVideoProcessor
    from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import _get_feat_extract_output_lengths

    vp = Qwen2VLVideoProcessor()
    n = 0
    for m in messages:
        for p in m["content"] if isinstance(m["content"], list) else []:
            if p["type"] == "video_url":
                data = base64.b64decode(p["video_url"]["url"].split(",", 1)[1])
                with av.open(io.BytesIO(data)) as c:
                    frames = [f for f in c.decode(video=0)]
                t = 32 if mode == "media-resample32" else len(frames)
                n += vp.get_num_of_video_patches(t, frames[0].height, frames[0].width, {}) // vp.merge_size**2
            elif p["type"] == "input_audio" and mode != "media-noaudio":
                with wave.open(io.BytesIO(base64.b64decode(p["input_audio"]["data"]))) as w:
                    n += int(_get_feat_extract_output_lengths(math.ceil(w.getnframes() / 160)))
    return n


class Handler(BaseHTTPRequestHandler):
    tok = model = None

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                self._send(200, {"requests": STATE["requests"]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        import torch

        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = body.get("model", "")
        with LOCK:
            STATE["requests"].append(
                {"body": body, "auth": self.headers.get("Authorization"), "agent": self.headers.get("User-Agent")}
            )
            n = STATE["counts"][name] = STATE["counts"].get(name, 0) + 1
        if name.startswith("flaky-") and n <= int(name.split("-")[1]):
            return self._send(503, {"error": {"message": "overloaded, try again"}})
        if "REJECT-ME" in json.dumps(body["messages"]):
            return self._send(400, {"error": {"message": "this prompt is longer than the model's context"}})
        if name == "bad":
            return self._send(400, {"error": {"message": "model 'bad' does not accept video_url parts"}})
        if name == "slow":
            time.sleep(3)
        tok, model = self.tok, self.model
        text = tok.apply_chat_template(flatten(body["messages"]), add_generation_prompt=True, tokenize=False)
        ids = tok(text, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=int(body.get("max_tokens", 8)), do_sample=False, pad_token_id=tok.pad_token_id
            )
            new = out[0, ids.shape[1] :]
            text = tok.decode(new, skip_special_tokens=True)
            message = {"role": "assistant", "content": text}
            field, _, extra = name.partition("-")
            if field in ("reasoning_content", "reasoning"):
                message = {"role": "assistant", "content": None, field: text + extra}
            elif field == "think":
                message["reasoning_content"] = extra
            elif name == "runon":
                message["content"] = tok.decode(new) + "<|endoftext|>\nuser\nassistant\njoy"
            max_tokens = int(body.get("max_tokens", 8))
            choice = {"index": 0, "message": message, "finish_reason": "length" if len(new) >= max_tokens else "stop"}
            if body.get("logprobs") and name != "nologprobs":
                logp = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
                vals, idx = logp.topk(int(body.get("top_logprobs", 5)))
                top = [
                    {"token": tok.decode([i]), "logprob": float(v)}
                    for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
                ]
                choice["logprobs"] = {
                    "content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]
                }
        prompt_tokens = ids.shape[1] + (media_tokens(body["messages"], name) if name.startswith("media-") else 0)
        self._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "model": name,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(new),
                    "total_tokens": prompt_tokens + len(new),
                },
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    Handler.tok, Handler.model = load_model()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
