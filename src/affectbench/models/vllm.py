"""`vllm`: the vLLM offline engine (`LLM.generate` with multi-modal data), tensor parallel.

The prompt is the model's own chat template (from its HF processor) with one placeholder per
media part; `multi_modal_data` carries the decoded frames as "video" ((T,H,W,3 uint8, `video_metadata`)) and the
16 kHz waveform as "audio" ((array, sample_rate)); the audio of a video is its own audio part and
`use_audio_in_video` stays off. The media are those the `hf` backend sends for the same sample: the
family's recipe (`families`: frames, pixels, rate, system prompt; frames as images for Gemma 3n /
Phi-4), the same decode, the audio cut to the feature extractor's window (`audio_truncated`), and the
processor switches `hf` passes (`cap_pixels_per_frame`). `mm_processor_kwargs.fps` is the videos' own
sampling rate (`DecodedClip.fps`: frames used / seconds covered), so the time axis of a clip sampled
sparser than `media.fps` is right. Modalities are counted from the placeholder ids in the expanded
prompt vLLM returns (tests/models/test_vllm_cpu_media.py: equal to the hf processor's, per modality).

Budgets as in `hf` (`models.budgets.fit` with the family's token counter from the processor, before the
parts take the family's form): the prompt's total video tokens and audio seconds, every cut in meta
(`video_truncated`, `audio_truncated`). Per prediction `meta.tokens` = {text, audio, video} counted from
the placeholder ids of the prompt vLLM expanded; a prompt whose tokens (+ max_new_tokens when generating)
exceed the context (`max_model_len`, else the text config's max_position_embeddings) fails its sample
with the message hf gives (vLLM itself refuses only prompts over max_model_len, failing the whole call).

The family's batch policy holds here too: a family whose outputs depend on batch-mates
(`families.serial`) gets `max_num_seqs: 1`. Prefix caching is off unless `enable_prefix_caching: true`
(a speed option for generate runs): with it on, prompt log-probs of identical prompts changed with
request order (vllm #42019), which is exactly score mode (one request per option over one media
prompt), so score mode refuses it. Both settings are in `info()["engine"]`, recorded with the run.

Options: tensor_parallel_size (1), limit_mm_per_prompt ({"audio": 1, "video": 1, "image": 1}),
dtype (auto), max_model_len, gpu_memory_utilization, max_num_seqs, enable_prefix_caching (false),
seed (0: the engine's seed, and the sampling seed when no per-sample seeds come with a batch),
trust_remote_code (false), max_lora_rank (64), recipe (as hf), family (a family key, when the
checkpoint's config.json is not local), engine_kwargs ({}: anything else LLM() takes). ModelSpec.adapter:
a LoRA folder served through LoRARequest. vLLM is imported lazily: `pip install 'affectbench[vllm]'`.

Card adapters (`models._card_adapters`: Phi-4-multimodal's speech-lora/ and vision-lora/, which its card
selects per input and hf loads) are not applied here yet (vLLM's examples pass them as one LoRARequest per
request, examples/offline_inference/audio_language.py `run_phi4mm`), so a checkpoint that ships them is refused
rather than answered as the bare backbone; `options.card_adapters: false` runs the bare backbone knowingly. A
task adapter trained on top of card adapters is refused always (vLLM applies one LoRA per request).
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
from . import _adapter, _card_adapters, _chat, _media, _score, budgets, families, stops, tokens
from . import options as options_
from .base import Conversation, Model
from .hf import ADAPTER_FILES, CAP_PIXELS_PER_FRAME, WEIGHT_FILES


def build_request(
    conv: Conversation,
    gen: GenerationSpec,
    render: Callable[[list[dict]], str],
    accepts: set[str] = frozenset({"audio", "video", "image"}),
    suffix: str = "",
    window: int | None = None,
    video_kwargs: dict[str, Any] | None = None,
) -> tuple[dict, tuple[str, ...], dict]:
    """A vLLM prompt dict {prompt, multi_modal_data, mm_processor_kwargs} for a prepared conversation (in the
    parts the family sends: `families.as_sent`).

    `render` turns chat-template messages into the prompt string (the model processor's
    apply_chat_template); audio is cut to `window` samples (the feature extractor's, as hf cuts it);
    `video_kwargs` are extra video-processor switches. Returns the request, the modalities it carries,
    and what was cut (`{"audio_truncated": [...]}` or {}).
    """
    msgs, media = _chat.chat_messages(conv, gen, accepts)
    mm: dict[str, list] = {}
    rates: list[float] = []
    sent: dict[str, Any] = {}
    for p in media:
        clip = p.data
        if p.kind == "audio":
            audio, cut = _media.audio_sent(clip, window)
            mm.setdefault("audio", []).append((audio, clip.sample_rate))
            if cut:
                sent.setdefault("audio_truncated", []).append(cut)
        elif p.kind == "video":
            rate = _media.clip_rate(clip, 2.0)
            mm.setdefault("video", []).append((clip.frames, video_metadata(clip.frames, rate)))
            rates.append(rate)
        else:
            mm.setdefault("image", []).append(clip.frames[0])
    request: dict[str, Any] = {"prompt": render(msgs) + suffix}
    if mm:
        request["multi_modal_data"] = {k: (v[0] if len(v) == 1 else v) for k, v in mm.items()}
        request["mm_processor_kwargs"] = {"use_audio_in_video": False}
        if rates:  # each video's own sampling rate sets its time axis (a long clip is sampled sparser)
            request["mm_processor_kwargs"]["fps"] = rates[0] if len(set(rates)) == 1 else rates
            request["mm_processor_kwargs"].update(video_kwargs or {})
    return request, _chat.sent_modalities(conv, media), sent


def video_metadata(frames, rate: float) -> dict[str, Any]:
    """vLLM's per-video metadata for frames already sampled at `rate` (frames/s): what its own frame loader
    makes (vllm/multimodal/media/video.py); Qwen2.5-VL's processor requires it (`video_needs_metadata`) and
    takes the time axis from its fps. `do_sample_frames` False: the frames are used as given."""
    n = int(frames.shape[0])
    return {
        "total_num_frames": n,
        "fps": float(rate),
        "duration": n / rate if rate > 0 else 0.0,
        "video_backend": "affectbench",
        "frames_indices": list(range(n)),
        "do_sample_frames": False,
    }


class VLLMModel(Model):
    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.opts = dict(spec.options)
        self._cache = _media.media_cache(workspace, self.opts)
        self._llm = None
        self._proc = None
        self._counter: tokens.Counter | None | bool = False  # False: not computed yet
        self._context: int | None = None
        self.adapter_change: float | None = None  # set by the adapter probe when the engine starts
        self.caps: dict[str, str] = {}
        # the media the hf backend would send: the family's recipe on the run's MediaSpec
        self.family = families.family_named(spec.name, self.opts)
        self.recipe = families.recipe_for(self.family, self.opts.get("recipe"))
        self.media = families.effective_media(self.media, self.recipe)
        self._refuse_card_adapters()

    def _refuse_card_adapters(self) -> None:
        """ModelError for a checkpoint whose card adapters this backend would silently leave out, and for a task
        adapter trained on top of card adapters (it cannot be stacked on them here)."""
        option = self.opts.get("card_adapters", "auto")
        if option not in ("auto", True, False):
            raise ModelError(f"vllm: options.card_adapters must be auto, true or false, not {option!r}")
        on_top = _card_adapters.trained_on(self.spec.adapter) if self.spec.adapter else None
        if on_top:
            raise ModelError(
                f"vllm: the LoRA adapter {self.spec.adapter} was trained on top of the card adapters {sorted(on_top)}; "
                "vLLM applies one LoRA per request, so it cannot be stacked on them: evaluate it on the hf backend"
            )
        if option is True:
            raise ModelError("vllm: card_adapters: true is not supported by this backend (use the hf backend)")
        found = _card_adapters.shipped(self.family.key, self.spec.name)
        if found and option is not False:
            raise ModelError(
                f"vllm: {self.spec.name} ships the card adapters {sorted(found)} that its model card selects per input "
                "(vision for images, speech for audio); this backend does not apply them yet and would answer as the "
                "bare backbone: evaluate it on the hf backend, or set model.options.card_adapters: false to run the "
                "bare backbone knowingly"
            )

    def fingerprint(self) -> str:
        h = hashlib.sha256(canonical_json(self.spec.identity()).encode())
        if self.recipe != families.Recipe():  # recipe-less checkpoints keep their old fingerprint
            h.update(canonical_json({"recipe": self.recipe.as_dict(), "media": self.media.model_dump()}).encode())
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
        # off by default: with it on, prompt log-probs depended on request order (vllm #42019)
        kw["enable_prefix_caching"] = bool(o.get("enable_prefix_caching", False))
        if self.spec.adapter:
            kw.update(enable_lora=True, max_lora_rank=int(o.get("max_lora_rank", 64)))
        kw.update(o.get("engine_kwargs") or {})
        if families.serial(self.family, self.media.modalities):  # the family's batch policy: one at a time
            if int(kw.get("max_num_seqs", 1)) != 1:
                raise ModelError(
                    f"vllm: {self.family.title} runs one request at a time (batch policy {self.family.batch!r}: "
                    f"{families.BATCH_POLICIES[self.family.batch]}); drop max_num_seqs={kw['max_num_seqs']}"
                )
            kw["max_num_seqs"] = 1
        return kw

    def load_processor(self) -> None:
        """The model's HF processor, chat template, placeholder ids, end tokens and context length: everything
        a request needs before vLLM's engine starts (no vLLM import)."""
        if self._proc is not None:
            return
        transformers = require("transformers", "hf", "the vllm backend's chat template")
        rev = {"revision": self.spec.revision} if self.spec.revision else {}
        proc = transformers.AutoProcessor.from_pretrained(self.spec.name, **rev)
        families.ensure_chat_template(proc, self.spec.name)
        self.caps = families.capabilities(proc)
        self._ids = _chat.placeholder_ids(proc)
        try:
            gencfg = transformers.GenerationConfig.from_pretrained(self.spec.name)
        except Exception:  # a checkpoint without generation_config.json: the tokenizer and template still say
            gencfg = None
        self.end_ids = stops.end_token_ids(proc, gencfg)
        try:
            cfg = transformers.AutoConfig.from_pretrained(self.spec.name, **rev)
            text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
            positions = getattr(text, "max_position_embeddings", None)
        except Exception:  # a config transformers cannot read: only max_model_len bounds the context
            positions = None
        known = [int(x) for x in (positions, self.opts.get("max_model_len")) if x]
        self._context = min(known) if known else None
        self._proc = proc

    def token_counter(self) -> tokens.Counter | None:
        """The family's media token counter from the processor (None for a family not counted), as hf."""
        self.load_processor()
        if self._counter is False:  # computed once
            self._counter = tokens.counter_or_none(self._proc, self.family.key, CAP_PIXELS_PER_FRAME)
        return self._counter

    def context_length(self) -> int | None:
        """Tokens the model can attend to: options.max_model_len, else the text config's max_position_embeddings
        (the smaller of the two when both are known; vLLM refuses a max_model_len above the config's)."""
        self.load_processor()
        return self._context

    def _load(self) -> None:
        if self._llm is not None:
            return
        vllm = require("vllm", "vllm", "the vllm backend")
        self.load_processor()
        self.adapter_towers()  # refuses, before the engine starts, tower targets vLLM would drop
        try:
            self._llm = vllm.LLM(**self.engine_kwargs())
        except Exception as e:
            raise ModelError(f"vllm: cannot start the engine for {self.spec.name!r}: {e}") from e
        if self.spec.adapter:
            self.adapter_change = self._probe_adapter()

    def adapter_towers(self) -> list[str]:
        """The adapter's modules in an audio or vision tower (`models._adapter.tower_modules`). vLLM applies
        LoRA to the language model only unless `enable_tower_connector_lora` (vision encoder and connector
        of some models; never audio towers): such weights would be dropped silently, so they are refused,
        naming them. Allowed ones are listed in info()."""
        if not self.spec.adapter:
            return []
        towers = _adapter.tower_modules(_adapter.adapter_modules(self.spec.adapter))
        vision_ok = bool(self.engine_kwargs().get("enable_tower_connector_lora"))
        dropped = [
            m
            for m in towers
            if not vision_ok or {"audio_tower", "audio_model", "embed_audio", "audio_embed"} & set(m.split("."))
        ]
        if dropped:
            raise ModelError(
                f"vllm: the LoRA adapter {self.spec.adapter} has weights in {len(dropped)} tower modules that vLLM "
                f"would ignore (e.g. {dropped[:3]}; LoRA reaches the language model only, vision towers with "
                "engine_kwargs.enable_tower_connector_lora); run it on hf or train without tower targets"
            )
        return towers

    def _probe_adapter(self) -> float:
        """The largest change the LoRA makes to the next-token log-probs (top 20) of one text prompt;
        ModelError when none (vllm #34186: a mismatched adapter loads and serves base-model output)."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
        runs = [
            self._llm.generate([_adapter.PROBE_TEXT], params, lora_request=lora, use_tqdm=False)[0]
            for lora in (None, self._lora())
        ]
        base, tuned = ({t: lp.logprob for t, lp in r.outputs[0].logprobs[0].items()} for r in runs)
        change = max(abs(base.get(t, -1e4) - tuned.get(t, -1e4)) for t in base.keys() | tuned.keys())
        return _adapter.check_active("vllm", self.spec.adapter, float(change))

    def _render(self, msgs: list[dict]) -> str:
        return self._proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def _accepts(self) -> set[str]:
        return families.sendable(self.caps, self.recipe)

    def requests(self, conv: Conversation, gen: GenerationSpec, suffixes: list[str] | None = None, render=None):
        """The vLLM requests of one prepared conversation (one per suffix; one without), as the family sends it
        (`families.as_sent`, the recipe's system prompt when the run sets none), within the media budgets
        (`budgets.fit`, whose cuts join each request's meta): `build_request` results. `render` (messages ->
        prompt text) replaces the chat template's own rendering (score mode's)."""
        self.load_processor()
        conv, cuts = budgets.fit(conv, self.token_counter(), self.media)
        conv = families.as_sent(conv, self.caps, self.recipe)
        if gen.system_prompt is None and self.recipe.system_prompt:
            gen = gen.model_copy(update={"system_prompt": self.recipe.system_prompt})
        window = _media.audio_window(self._proc)
        extra = {"cap_pixels_per_frame": CAP_PIXELS_PER_FRAME} if _media.takes_cap_pixels_per_frame(self._proc) else {}
        out = []
        for s in suffixes or [""]:
            req, mods, sent = build_request(conv, gen, render or self._render, self._accepts(), s, window, extra)
            meta = {k: list(v) for k, v in cuts.items()}
            for k, v in sent.items():  # the processor window's cut after the budget's
                meta.setdefault(k, []).extend(v)
            out.append((req, mods, meta))
        return out

    def _tokens(self, prompt_ids, new: int) -> tuple[dict[str, int], str | None]:
        """Tokens per modality of an expanded prompt, and the error when it and `new` tokens exceed the context."""
        ids = list(prompt_ids or [])
        counts = budgets.tokens_by_modality(ids, self._ids)
        ctx = self.context_length()
        if ctx is not None and len(ids) + new > ctx:
            return counts, (
                f"vllm: a prompt of {len(ids)} tokens ({counts}) + {new} new tokens exceeds the context of {ctx}; "
                "lower media.max_video_tokens / max_frames / max_seconds (`affectbench plan` shows this)"
            )
        return counts, None

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
        reqs = [self.requests(c, gen)[0] for c in batch]
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
        outs = self._llm.generate([r[0] for r in reqs], params, lora_request=self._lora(), use_tqdm=False)
        gens = []
        for conv, (req, sent, cut), out in zip(batch, reqs, outs, strict=True):
            notes = _media.part_notes(conv)
            opened = _chat.opens_reasoning(req["prompt"])
            answer, reasoning = _chat.split_answer(out.outputs[0].text.strip(), opened)
            meta: dict = {"notes": notes} if notes else {}
            if opened:
                meta["reasoning_opened"] = True
            meta["tokens"], too_long = self._tokens(out.prompt_token_ids, gen.max_new_tokens)
            if too_long:
                gens.append(Generation(text="", error=too_long, meta={**meta, **cut}))
                continue
            gens.append(
                Generation(
                    text=answer,
                    reasoning=reasoning,
                    modalities=self._modalities(sent, out.prompt_token_ids),
                    n_input_tokens=len(out.prompt_token_ids or []),
                    n_output_tokens=len(out.outputs[0].token_ids),
                    finish_reason=stops.finish_reason(out.outputs[0].finish_reason),
                    meta={**meta, **cut},
                )
            )
        return gens

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Sum of prompt log-probs of each option's tokens appended after the generation prompt (the option's
        tokens as tokenize(prompt + option) splits them; see `models._score.continuations`)."""
        if self.engine_kwargs()["enable_prefix_caching"]:
            raise ModelError(
                "vllm: score mode needs enable_prefix_caching off: with it on, prompt log-probs of one prompt "
                "changed with request order (vllm #42019)"
            )
        self._load()
        from vllm import SamplingParams

        tok = getattr(self._proc, "tokenizer", self._proc)  # a text-only model's AutoProcessor is its tokenizer
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        out = []
        for conv in batch:
            conv = self.prepare(conv)
            closed: list[bool] = []
            render = functools.partial(_closed_render, self._render, closed)  # `_chat.close_reasoning` first
            reqs = self.requests(conv, gen, list(options), render)
            prompt = reqs[0][0]["prompt"][: len(reqs[0][0]["prompt"]) - len(options[0])]
            try:  # each option's tokens in prompt+option, at the lm-eval-harness boundary (models._score)
                _, conts = _score.continuations(tok, prompt, list(options))
            except ValueError as e:
                raise ModelError(f"vllm: {e}") from e
            res = self._llm.generate([r[0] for r in reqs], params, lora_request=self._lora(), use_tqdm=False)
            ids = list(res[0].prompt_token_ids or [])
            counts, too_long = self._tokens(ids[: len(ids) - len(conts[0])], 0)
            if too_long:  # vLLM refuses prompts over max_model_len; this covers a context below it
                raise ModelError(too_long)
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
                    meta={**reqs[0][2], "tokens": counts, **({"reasoning_closed": True} if any(closed) else {})},
                )
            )
        return out

    def info(self) -> dict:
        info: dict[str, Any] = {"engine": {k: v for k, v in self.engine_kwargs().items() if k != "model"}}
        info.update(family=self.family.key, batch_policy=self.family.batch, recipe=self.recipe.as_dict())
        if self.spec.adapter:
            info["adapter_probe"] = {"prompt": _adapter.PROBE_TEXT, "max_logprob_change": self.adapter_change}
            info["adapter_towers"] = self.adapter_towers()
        info["media"] = self.media.model_dump()
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
