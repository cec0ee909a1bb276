"""`vllm`: the vLLM offline engine (`LLM.generate` with multi-modal data), tensor parallel.

The prompt is the model's own chat template (from its HF processor) with one placeholder per
media part; `multi_modal_data` carries the decoded frames as "video" (T,H,W,3 uint8) and the
16 kHz waveform as "audio" ((array, sample_rate)); the audio of a video is its own audio part and
`use_audio_in_video` stays off. `mm_processor_kwargs.fps` is the videos' own sampling rate
(`DecodedClip.fps`: frames used / seconds covered), so the time axis of a clip sampled sparser than
`media.fps` is right. Modalities are counted from the placeholder ids in the expanded
prompt vLLM returns.

Options: tensor_parallel_size (1), limit_mm_per_prompt ({"audio": 1, "video": 1, "image": 1}),
dtype (auto), max_model_len, gpu_memory_utilization, seed (0: the engine's seed, and the sampling
seed when no per-sample seeds come with a batch), trust_remote_code (false),
max_lora_rank (64), engine_kwargs ({}: anything else LLM() takes). ModelSpec.adapter: a LoRA
folder served through LoRARequest. vLLM is imported lazily: `pip install 'affectbench[vllm]'`.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import ModelError, require
from ..core.specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..core.types import Generation
from . import _chat, _media, _score, stops
from . import options as options_
from .base import Conversation, Model
from .hf import ADAPTER_FILES, WEIGHT_FILES


def build_request(
    conv: Conversation,
    gen: GenerationSpec,
    render: Callable[[list[dict]], str],
    accepts: set[str] = frozenset({"audio", "video", "image"}),
    suffix: str = "",
) -> tuple[dict, tuple[str, ...]]:
    """A vLLM prompt dict {prompt, multi_modal_data, mm_processor_kwargs} for a prepared conversation.

    `render` turns chat-template messages into the prompt string (the model processor's
    apply_chat_template); returns the request and the modalities it carries.
    """
    msgs, media = _chat.chat_messages(conv, gen, accepts)
    mm: dict[str, list] = {}
    rates: list[float] = []
    for p in media:
        clip = p.data
        if p.kind == "audio":
            mm.setdefault("audio", []).append((clip.audio, clip.sample_rate))
        elif p.kind == "video":
            mm.setdefault("video", []).append(clip.frames)
            rates.append(_media.clip_rate(clip, 2.0))
        else:
            mm.setdefault("image", []).append(clip.frames[0])
    request: dict[str, Any] = {"prompt": render(msgs) + suffix}
    if mm:
        request["multi_modal_data"] = {k: (v[0] if len(v) == 1 else v) for k, v in mm.items()}
        request["mm_processor_kwargs"] = {"use_audio_in_video": False}
        if rates:  # each video's own sampling rate sets its time axis (a long clip is sampled sparser)
            request["mm_processor_kwargs"]["fps"] = rates[0] if len(set(rates)) == 1 else rates
    return request, _chat.sent_modalities(conv, media)


class VLLMModel(Model):
    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.opts = dict(spec.options)
        self._cache = _media.media_cache(workspace, self.opts)
        self._llm = None
        self._proc = None

    def fingerprint(self) -> str:
        h = hashlib.sha256(canonical_json(self.spec.identity()).encode())
        if Path(self.spec.name).is_dir():
            h.update(_media.folder_identity(self.spec.name, WEIGHT_FILES).encode())
        if self.spec.adapter:
            h.update(b"adapter:" + _media.folder_identity(self.spec.adapter, ADAPTER_FILES).encode())
        return h.hexdigest()[:16]

    def weights(self) -> dict:
        from ._hub import resolve_weights

        return resolve_weights(self.spec.name, self.spec.revision, WEIGHT_FILES)

    def engine_kwargs(self) -> dict[str, Any]:
        """The keyword arguments given to vllm.LLM (tested without vLLM)."""
        o = self.opts
        kw: dict[str, Any] = {
            "model": self.spec.name,
            "tensor_parallel_size": int(o.get("tensor_parallel_size", 1)),
            "limit_mm_per_prompt": o.get("limit_mm_per_prompt", {"audio": 1, "video": 1, "image": 1}),
            "dtype": o.get("dtype", "auto"),
            "seed": int(o.get("seed", 0)),
            "trust_remote_code": bool(o.get("trust_remote_code", False)),
        }
        if self.spec.revision:
            kw.update(revision=self.spec.revision, tokenizer_revision=self.spec.revision)
        for key in ("max_model_len", "gpu_memory_utilization", "max_num_seqs"):
            if key in o:
                kw[key] = o[key]
        if self.spec.adapter:
            kw.update(enable_lora=True, max_lora_rank=int(o.get("max_lora_rank", 64)))
        kw.update(o.get("engine_kwargs") or {})
        return kw

    def _load(self) -> None:
        if self._llm is not None:
            return
        vllm = require("vllm", "vllm", "the vllm backend")
        transformers = require("transformers", "hf", "the vllm backend's chat template")
        rev = {"revision": self.spec.revision} if self.spec.revision else {}
        self._proc = transformers.AutoProcessor.from_pretrained(self.spec.name, **rev)
        self._ids = _chat.placeholder_ids(self._proc)
        try:
            gencfg = transformers.GenerationConfig.from_pretrained(self.spec.name)
        except Exception:  # a checkpoint without generation_config.json: the tokenizer and template still say
            gencfg = None
        self.end_ids = stops.end_token_ids(self._proc, gencfg)
        try:
            self._llm = vllm.LLM(**self.engine_kwargs())
        except Exception as e:
            raise ModelError(f"vllm: cannot start the engine for {self.spec.name!r}: {e}") from e

    def _render(self, msgs: list[dict]) -> str:
        return self._proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def _accepts(self) -> set[str]:
        return _chat.processor_kinds(self._proc)

    def _lora(self):
        if not self.spec.adapter:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("adapter", 1, str(self.spec.adapter))

    def prepare(self, conversation: Conversation) -> Conversation:
        return _media.prepare_media(conversation, self.media, self._cache)

    def _modalities(self, sent: tuple[str, ...], prompt_ids) -> tuple[str, ...]:
        if not prompt_ids:
            return sent
        present = set(prompt_ids)
        return tuple(m for m in sent if m == "T" or self._ids.get(m, set()) & present)

    accepts_seeds = True

    def generate(
        self, batch: list[Conversation], gen: GenerationSpec, seeds: list[int] | None = None
    ) -> list[Generation]:
        """One request per conversation; `seeds` (one per conversation, else options.seed for all) become
        each request's SamplingParams.seed, so batching does not change sampled answers."""
        self._load()
        from vllm import SamplingParams

        batch = [self.prepare(c) for c in batch]
        reqs = [build_request(c, gen, self._render, self._accepts()) for c in batch]
        seeds = seeds if seeds is not None else [int(self.opts.get("seed", 0))] * len(batch)
        params = [
            SamplingParams(
                max_tokens=gen.max_new_tokens,
                temperature=gen.temperature,
                top_p=gen.top_p,
                seed=int(s),
                stop_token_ids=list(self.end_ids),  # every end token of the checkpoint and its template
            )
            for s in seeds
        ]
        outs = self._llm.generate([r for r, _ in reqs], params, lora_request=self._lora(), use_tqdm=False)
        gens = []
        for conv, (req, sent), out in zip(batch, reqs, outs, strict=True):
            notes = _media.part_notes(conv)
            opened = _chat.opens_reasoning(req["prompt"])
            answer, reasoning = _chat.split_answer(out.outputs[0].text.strip(), opened)
            meta: dict = {"notes": notes} if notes else {}
            if opened:
                meta["reasoning_opened"] = True
            gens.append(
                Generation(
                    text=answer,
                    reasoning=reasoning,
                    modalities=self._modalities(sent, out.prompt_token_ids),
                    n_input_tokens=len(out.prompt_token_ids or []),
                    n_output_tokens=len(out.outputs[0].token_ids),
                    finish_reason=stops.finish_reason(out.outputs[0].finish_reason),
                    meta=meta,
                )
            )
        return gens

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Sum of prompt log-probs of each option's tokens appended after the generation prompt (the option's
        tokens as tokenize(prompt + option) splits them; see `models._score.continuations`)."""
        self._load()
        from vllm import SamplingParams

        tok = getattr(self._proc, "tokenizer", self._proc)  # a text-only model's AutoProcessor is its tokenizer
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        out = []
        for conv in batch:
            conv = self.prepare(conv)
            closed: list[bool] = []
            render = functools.partial(_closed_render, self._render, closed)  # `_chat.close_reasoning` first
            reqs = [build_request(conv, gen, render, self._accepts(), suffix=o) for o in options]
            prompt = reqs[0][0]["prompt"][: len(reqs[0][0]["prompt"]) - len(options[0])]
            try:  # each option's tokens in prompt+option, at the lm-eval-harness boundary (models._score)
                _, conts = _score.continuations(tok, prompt, list(options))
            except ValueError as e:
                raise ModelError(f"vllm: {e}") from e
            res = self._llm.generate([r for r, _ in reqs], params, lora_request=self._lora(), use_tqdm=False)
            scores = {}
            for opt, cont, r in zip(options, conts, res, strict=True):
                ids, lps = r.prompt_token_ids, r.prompt_logprobs
                scores[opt] = float(sum(lps[i][ids[i]].logprob for i in range(len(ids) - len(cont), len(ids))))
            out.append(
                options_.score_generation(
                    scores,
                    gen.decision,
                    modalities=self._modalities(reqs[0][1], res[0].prompt_token_ids),
                    n_input_tokens=len(res[0].prompt_token_ids or []) - len(conts[0]),
                    **({"meta": {"reasoning_closed": True}} if any(closed) else {}),
                )
            )
        return out

    def info(self) -> dict:
        info: dict[str, Any] = {"engine": {k: v for k, v in self.engine_kwargs().items() if k != "model"}}
        try:
            import vllm

            info["vllm"] = vllm.__version__
        except ImportError:
            pass
        return info


def _closed_render(render, closed: list[bool], msgs: list[dict]) -> str:
    """Score mode's rendering: the chat template's prompt with an opened reasoning block closed empty
    (`_chat.close_reasoning`); whether it was opened is appended to `closed`."""
    text, did = _chat.close_reasoning(render(msgs))
    closed.append(did)
    return text
