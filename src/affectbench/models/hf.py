"""`hf`: transformers chat models that take audio and/or video (Qwen2.5-Omni / Qwen3-Omni thinker,
Qwen2-Audio, Qwen2-VL / Qwen2.5-VL and other AutoProcessor + chat-template models).

Decoded frames go to the processor as `videos` and decoded 16 kHz audio as `audio`, each as its
own chat part (the audio of a video is never left to `use_audio_in_video`). Every Generation
records which modalities reached the model, counted from the placeholder tokens in input_ids.

Options (ModelSpec.options): dtype (auto|float32|bfloat16|float16), device (auto|cpu|cuda[:n]),
device_map, attn_implementation, model_class (a transformers class name; default from the
config's architectures; a full Omni model loads its thinker), seed (0: the sampling seed only when
no per-sample seeds come with a batch; runs derive them from RunSpec.seed), merge_adapter (true, false
when card adapters are loaded; true with them is a ModelError, ms-swift #5811), trust_remote_code (false),
media_cache (true), card_adapters (auto|true|false: the LoRA adapters a checkpoint ships per input modality,
Phi-4-multimodal's speech-lora / vision-lora, loaded and selected per forward as its card does; auto follows a
task adapter's card on whether it was trained on top of them; `models._card_adapters`), recipe (a mapping
overriding the family's media recipe: video, fps, max_frames, max_pixels, sample_rate, max_seconds,
system_prompt; see `families`).
ModelSpec.adapter: a LoRA folder applied with peft; beside card adapters it is loaded as one more adapter
("task") active on top of the card adapter each forward picks. Generation.meta["adapters"]: the adapters that
answered the row, in activation order ([] = the base), when any is loaded.

Per-family behaviour (recipe, video as frames, BOS, batching, capability discovery) lives in `families`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from ..core.errors import ModelError, require
from ..core.specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..core.types import Generation
from . import _adapter, _card_adapters, _chat, _media, _score, budgets, families, stops, tokens
from . import options as options_
from .base import Conversation, Model

# full omni models -> (class to load, attribute holding the text-producing thinker)
THINKER_OF = {
    "Qwen2_5OmniForConditionalGeneration": "Qwen2_5OmniThinkerForConditionalGeneration",
    "Qwen3OmniMoeForConditionalGeneration": "Qwen3OmniMoeThinkerForConditionalGeneration",
}
# Qwen2-VL video processing: bound each frame by an even share of the total video budget, as the
# reference (qwen-vl-utils / qwen-omni-utils) does; transformers' default will switch to this in v5.22
CAP_PIXELS_PER_FRAME = True
WEIGHT_FILES = ("config.json", "*.safetensors", "*.safetensors.index.json", "*.bin")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def _dtype(torch, name: str, device: str):
    if name in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }[name]
    except KeyError:
        raise ModelError(f"hf: unknown dtype {name!r}; use auto, float32, bfloat16 or float16") from None


def torch_device(device: str = "auto") -> str:
    """A process's torch device: `device` unless "auto"; then `cuda:LOCAL_RANK` when a GPU is visible (each
    rank of torchrun / accelerate launch takes its own GPU; LOCAL_RANK unset = 0), else "cpu"."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


class HFModel(Model):
    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if not spec.name:
            raise ModelError("hf: model name is empty; set model.name to a local folder or a cached hub id")
        self.opts: dict[str, Any] = dict(spec.options)
        self._cache = _media.media_cache(workspace, self.opts)
        self._lock = threading.Lock()
        self._model = None
        self._proc = None
        self._counter: tokens.Counter | None | bool = False  # False: not computed yet
        self.adapter_change: float | None = None  # set by the adapter probe at load
        self.thinker_prefix = ""  # "thinker." when the checkpoint is a full Omni model whose thinker we load
        self._fingerprint: str | None = None
        self.family = families.family_of(families.local_config(spec.name))
        self.recipe = families.recipe_for(self.family, self.opts.get("recipe"))
        self.media = families.effective_media(self.media, self.recipe)
        self.caps: dict[str, str] = {}
        if spec.adapter and not Path(spec.adapter).is_dir():
            raise ModelError(f"hf: LoRA adapter folder not found: {spec.adapter}")
        self.card_adapters = _card_adapters.wanted(  # {name: subfolder} loaded with the weights
            self.family.key, spec.name, self.opts.get("card_adapters", "auto"), spec.adapter
        )

    # ---- identity -------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256(canonical_json(self.spec.identity()).encode())
            h.update(canonical_json({"recipe": self.recipe.as_dict(), "media": self.media.settings()}).encode())
            if Path(self.spec.name).is_dir():
                h.update(_media.folder_identity(self.spec.name, WEIGHT_FILES).encode())
            for name, sub in sorted(self.card_adapters.items()):  # none loaded: the id stays as before
                h.update(
                    f"card:{name}:".encode()
                    + _media.folder_identity(Path(self.spec.name) / sub, ADAPTER_FILES).encode()
                )
            if self.spec.adapter:
                h.update(b"adapter:" + _media.folder_identity(self.spec.adapter, ADAPTER_FILES).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def weights(self) -> dict:
        from ._hub import resolve_weights

        return resolve_weights(self.spec.name, self.spec.revision, WEIGHT_FILES)

    def info(self) -> dict:
        import torch
        import transformers

        info = {"torch": torch.__version__, "transformers": transformers.__version__}
        info.update(family=self.family.key, recipe=self.recipe.as_dict(), media=self.media.model_dump())
        info["batch_policy"] = self.family.batch  # families.BATCH_POLICIES: what may share a forward
        try:
            import peft

            info["peft"] = peft.__version__
        except ImportError:
            pass
        if self._model is not None:
            info.update(
                device=str(self.device),
                dtype=str(self._model.dtype).replace("torch.", ""),
                model_class=type(self._model).__name__,
                processor_class=type(self._proc).__name__,
                attn_implementation=getattr(self._model.config, "_attn_implementation", None),
                capabilities=dict(self.caps),
            )
            if _media.takes_cap_pixels_per_frame(self._proc):
                info["cap_pixels_per_frame"] = CAP_PIXELS_PER_FRAME
            info["audio_window_s"] = (_media.audio_window(self._proc) or 0) / self.media.sample_rate or None
            info["audio_in_video"] = "interleaved" if self._interleaves() else "separate part"
            if self.card_adapters:
                info["card_adapters"] = dict(self.card_adapters)
            if self.spec.adapter:  # the probe that showed the adapter active (largest next-token logit change)
                info["adapter_probe"] = {"prompt": _adapter.PROBE_TEXT, "max_logit_change": self.adapter_change}
                if self.card_adapters:  # the smallest change over the card states it was probed on top of
                    info["adapter_probe"]["on_top_of"] = [None, *self.card_adapters]
        return info

    # ---- loading --------------------------------------------------------------------------
    def load(self) -> None:
        """Load processor + model (+ adapter) once; generate/score call this lazily."""
        with self._lock:
            if self._model is None:
                self._load()

    @property
    def model(self):
        """The loaded torch module (the thinker of a full Omni checkpoint; adapter applied if any)."""
        self.load()
        return self._model

    @property
    def processor(self):
        """The loaded HF processor (its `.tokenizer` pads on the left)."""
        self.load()
        return self._proc

    @property
    def placeholder_ids(self) -> dict[str, set[int]]:
        """{"A": ids, "V": ids}: the audio and video/image placeholder token ids of the processor."""
        self.load()
        return self._ids

    def _load(self) -> None:
        torch = require("torch", "hf", "the hf backend")
        transformers = require("transformers", "hf", "the hf backend")
        o = self.opts
        name = self.spec.name
        trust = bool(o.get("trust_remote_code", False))
        device = torch_device(o.get("device", "auto"))
        dtype = _dtype(torch, o.get("dtype", "auto"), device)
        rev = {"revision": self.spec.revision} if self.spec.revision else {}
        try:
            config = transformers.AutoConfig.from_pretrained(name, trust_remote_code=trust, **rev)
            proc = transformers.AutoProcessor.from_pretrained(name, trust_remote_code=trust, **rev)
        except Exception as e:
            raise ModelError(f"hf: cannot load config/processor of {name!r}: {e}") from e
        families.ensure_chat_template(proc, name)
        if self.family is families.GENERIC and families.family_of(config.to_dict()) is not families.GENERIC:
            self.family = families.family_of(config.to_dict())  # a hub id outside the local cache
            self.recipe = families.recipe_for(self.family, o.get("recipe"))
            self.media = families.effective_media(self.media, self.recipe)
        self.caps = families.capabilities(proc)
        families.check_modalities(name, self.caps, self.recipe, self.media.modalities)
        cls_name = o.get("model_class") or (config.architectures or ["AutoModelForImageTextToText"])[0]
        full = cls_name in THINKER_OF and not o.get("model_class")
        cls = getattr(transformers, cls_name, None)
        if cls is None:
            raise ModelError(f"hf: transformers {transformers.__version__} has no class {cls_name!r} (upgrade it)")
        kwargs: dict[str, Any] = {"dtype": dtype, **rev}
        if o.get("attn_implementation"):
            kwargs["attn_implementation"] = o["attn_implementation"]
        if o.get("device_map"):
            kwargs["device_map"] = o["device_map"]
        if full:  # never build the talker / code2wav that we drop anyway (billions of parameters)
            kwargs["enable_audio_output"] = False
        try:
            model = cls.from_pretrained(name, trust_remote_code=trust, **kwargs)
        except Exception as e:
            raise ModelError(f"hf: cannot load {cls_name} from {name!r}: {e}") from e
        if full:  # released Omni checkpoints hold thinker + talker: keep the thinker only
            if hasattr(model, "disable_talker"):  # in case a config ignored enable_audio_output
                model.disable_talker()
            model = model.thinker
            self.thinker_prefix = "thinker."
        if not o.get("device_map"):
            model = model.to(device)
        _card_adapters.load(model, name, self.card_adapters)
        if self.spec.adapter and self.card_adapters:  # stacked on the card adapters, never merged
            if o.get("merge_adapter"):
                raise ModelError(f"hf: {_card_adapters.MERGE_REFUSED}")
            _card_adapters.load_task(model, self.spec.adapter)
            self.adapter_change = self._probe_stacked(torch, model, proc, device)
        elif self.spec.adapter:
            peft = require("peft", "finetune", "LoRA adapters")
            model = peft.PeftModel.from_pretrained(model, self.spec.adapter)
            self.adapter_change = self._probe_adapter(torch, model, proc, device)  # refuses an inactive adapter
            if o.get("merge_adapter", True):
                model = model.merge_and_unload()
        model.eval()
        tok = getattr(proc, "tokenizer", proc)
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._proc, self._model, self.device = proc, model, device
        self._ids = _chat.placeholder_ids(proc)
        self.end_ids = stops.end_token_ids(tok, getattr(model, "generation_config", None))

    def _probe_adapter(self, torch, model, proc, device) -> float:
        """The largest change the adapter makes to the next-token logits of one text prompt (`models._adapter`);
        ModelError when it changes none (an inactive adapter would give base-model answers silently)."""
        tok = getattr(proc, "tokenizer", proc)
        ids = tok(_adapter.PROBE_TEXT, return_tensors="pt").input_ids.to(device)
        with torch.inference_mode():
            adapted = model(input_ids=ids).logits[0, -1].float()
            with model.disable_adapter():
                base = model(input_ids=ids).logits[0, -1].float()
        return _adapter.check_active("hf", self.spec.adapter, float((adapted - base).abs().max()))

    def _probe_stacked(self, torch, model, proc, device) -> float:
        """`_probe_adapter` for a task adapter beside card adapters: the logit change of the task adapter on top
        of each card state (none, then each card adapter), the smallest of them; ModelError when it is zero."""
        tok = getattr(proc, "tokenizer", proc)
        ids = tok(_adapter.PROBE_TEXT, return_tensors="pt").input_ids.to(device)
        changes = []
        with torch.inference_mode():
            for card in [None, *self.card_adapters]:
                _card_adapters.activate(model, card, _card_adapters.TASK)
                adapted = model(input_ids=ids).logits[0, -1].float()
                _card_adapters.activate(model, card)
                changes.append(float((adapted - model(input_ids=ids).logits[0, -1].float()).abs().max()))
        _card_adapters.activate(model, None)
        return _adapter.check_active("hf", self.spec.adapter, min(changes))

    @property
    def accepts(self) -> set[str]:
        """Which media part kinds the model can be sent (video also when the family sends frames as images)."""
        self.load()
        return families.sendable(self.caps, self.recipe)

    # ---- inputs ---------------------------------------------------------------------------
    def prepare(self, conversation: Conversation) -> Conversation:
        return _media.prepare_media(conversation, self.media, self._cache)

    def chat_inputs(self, conv: Conversation, gen: GenerationSpec, interleave: bool = False):
        """Chat-template messages and the media parts to send, in order, for one conversation, as the
        family sends them (`families.as_sent`: e.g. frames as images), with the recipe's system prompt
        when the run sets none. With `interleave` each video's audio rides with it: the third item holds
        the ids of the video parts that carry their audio (`_media.audio_of_videos`)."""
        self.load()
        conv = families.as_sent(conv, self.caps, self.recipe)
        if gen.system_prompt is None and self.recipe.system_prompt:
            gen = gen.model_copy(update={"system_prompt": self.recipe.system_prompt})
        sent, with_audio = _media.audio_of_videos(conv) if interleave else (conv, set())
        msgs, media = _chat.chat_messages(sent, gen, self.accepts)
        return msgs, media, with_audio

    def encode(self, batch: list[Conversation], gen: GenerationSpec, suffixes: list[str] | None = None):
        """Processor inputs (input_ids, attention_mask, media features; left-padded, on the model's device) of
        prepared conversations, each rendered with the generation prompt and followed by `suffixes[i]`;
        see `_encode_sent`. Raises ModelError when the processor rejects the inputs."""
        return self._encode_sent(batch, gen, suffixes)[0]

    def _interleaves(self) -> bool:
        """Whether a video's audio goes interleaved with its frames (the qwen-omni-utils preset, Omni processors)."""
        return self.media.preset == "qwen-omni-utils" and hasattr(self._proc, "replace_video_with_audio_token")

    def _encode_sent(
        self, batch: list[Conversation], gen: GenerationSpec, suffixes: list[str] | None = None, close: bool = False
    ):
        """Processor inputs for `batch` and, per conversation, what was sent (`meta`: the video grids the
        processor made and each video's rate; `audio_truncated` where audio exceeded the extractor's window).

        Each video's own sampling rate (`DecodedClip.fps`) sets its time axis (`video_second_per_grid`), so a
        clip sampled sparser than `media.fps` is not squeezed. With the qwen-omni-utils preset the audio of
        a video is interleaved with its frames by time (`load_audio_from_video` with the decoded audio, and
        `use_audio_in_video` for the model's position ids); each conversation is then processed on its own
        (the processor takes one rate per call) and the outputs are joined.
        """
        self.load()
        proc = self._proc
        interleave = self._interleaves()
        window = _media.audio_window(proc)
        counter = self.token_counter()
        rows, metas = [], []
        carried = [self._carries_audio(c) for c in batch]
        if True in carried and False in carried:
            raise ModelError(
                "hf: videos with and without their audio cannot share a forward (use_audio_in_video is one flag "
                "per forward); generate() splits such batches (families.batches)"
            )
        for i, conv in enumerate(batch):
            conv, cuts = budgets.fit(conv, counter, self.media)  # the prompt's video-token / audio budgets
            msgs, media, with_audio = self.chat_inputs(conv, gen, bool(carried[i]))
            text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            meta: dict[str, Any] = dict(cuts)
            if _chat.opens_reasoning(text):
                meta["reasoning_opened"] = True
            if close:  # score mode: an opened reasoning block is closed empty (`_chat.close_reasoning`)
                text, closed = _chat.close_reasoning(text)
                meta.pop("reasoning_opened", None)
                if closed:
                    meta["reasoning_closed"] = True
            row: dict[str, Any] = {"text": text + (suffixes[i] if suffixes else ""), "videos": [], "audio": []}
            row.update(images=[], rates=[], slots=[])
            for p in media:
                clip = p.data
                if p.kind == "video":
                    row["videos"].append(clip.frames)
                    row["rates"].append(_media.clip_rate(clip, self.media.fps))
                    if id(p) in with_audio:
                        audio, cut = _media.audio_sent(clip, window)
                        row["audio"].append(audio)
                        row["slots"].append(len(row["videos"]) - 1)
                        if cut:
                            meta.setdefault("audio_truncated", []).append(cut)
                elif p.kind == "audio":
                    audio, cut = _media.audio_sent(clip, window)
                    row["audio"].append(audio)
                    row["slots"].append(None)
                    if cut:
                        meta.setdefault("audio_truncated", []).append(cut)
                else:
                    row["images"].append(clip.frames[0])
            rows.append(row)
            metas.append(meta)
        if interleave:
            pad = getattr(proc, "tokenizer", proc).pad_token_id
            inputs = _media.collate([self._process([r], bool(c)) for r, c in zip(rows, carried, strict=True)], pad)
            if True in carried:  # every video of this forward carries its audio (checked above)
                inputs["use_audio_in_video"] = True
        else:
            inputs = self._process(rows, interleave)
        self._record_grids(inputs, rows, metas)
        self._record_tokens(inputs, metas, gen)
        return _to_device(inputs, self.device), metas

    def token_counter(self) -> tokens.Counter | None:
        """The family's media token counter from the loaded processor (None for a family not counted)."""
        self.load()
        if self._counter is False:  # computed once
            self._counter = tokens.counter_or_none(self._proc, self.family.key, CAP_PIXELS_PER_FRAME)
        return self._counter

    def context_length(self) -> int | None:
        """Tokens the model can attend to: the text backbone's max_position_embeddings, or
        options.max_model_len when smaller."""
        self.load()
        cfg = getattr(self._model, "config", None)
        text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        known = [int(x) for x in (getattr(text, "max_position_embeddings", None), self.opts.get("max_model_len")) if x]
        return min(known) if known else None

    def _record_tokens(self, inputs, metas: list[dict], gen: GenerationSpec) -> None:
        """Per row: tokens per modality (`meta["tokens"]`) and, in a batch, the padded row width
        (`meta["padded_to"]`); a row longer than the context (with the new
        tokens a generation may add) raises ModelError, which costs that sample only (the engine retries
        a failed batch sample by sample)."""
        ctx = self.context_length()
        new = gen.max_new_tokens if gen.mode == "generate" else 0
        width = int(inputs["input_ids"].shape[1])
        for r, meta in enumerate(metas):
            row = inputs["input_ids"][r][inputs["attention_mask"][r].bool()].tolist()
            meta["tokens"] = budgets.tokens_by_modality(row, self._ids)
            if len(metas) > 1:
                meta["padded_to"] = width  # the batch's row width: width - len(row) padding tokens
            if ctx is not None and len(row) + new > ctx:
                raise ModelError(
                    f"hf: a prompt of {len(row)} tokens ({meta['tokens']}) + {new} new tokens exceeds the context of "
                    f"{ctx}; lower media.max_video_tokens / max_frames / max_seconds (`affectbench plan` shows this)"
                )

    def _carries_audio(self, conv: Conversation) -> bool | None:
        """Under interleaving (`_interleaves`): whether the conversation's videos carry their audio (then it is
        interleaved by time), False for videos without (a mute clip: sent as plain video), None without video;
        always None when the run does not interleave."""
        return _media.videos_carry_audio(conv) if self._interleaves() else None

    def _process(self, rows: list[dict], interleave: bool):
        """One processor call over `rows`; every video gets its own rate on the time axis."""
        import torch

        proc = self._proc
        videos = [v for r in rows for v in r["videos"]]
        audios = [a for r in rows for a in r["audio"]]
        images = [im for r in rows for im in r["images"]]
        rates = [x for r in rows for x in r["rates"]]
        texts = [r["text"] for r in rows]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        kwargs["add_special_tokens"] = families.add_special_tokens(getattr(proc, "tokenizer", proc), texts)  # one BOS
        if videos:
            kwargs["videos"] = videos
            kwargs["videos_kwargs"] = {"fps": rates[0] if len(set(rates)) == 1 else float(self.media.fps)}
            if _media.takes_cap_pixels_per_frame(proc):
                kwargs["videos_kwargs"]["cap_pixels_per_frame"] = CAP_PIXELS_PER_FRAME
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = self.media.sample_rate
        if interleave and videos:
            kwargs["load_audio_from_video"] = True
            kwargs["audio_from_video_indices"] = [x for r in rows for x in r["slots"]]
        if images:
            kwargs["images"] = images
        try:
            inputs = proc(**kwargs)
        except Exception as e:
            raise ModelError(f"hf: the processor of {self.spec.name!r} rejected the inputs: {e}") from e
        inputs = dict(inputs)
        tps = getattr(getattr(proc, "video_processor", None), "temporal_patch_size", None)
        for key in ("video_second_per_grid", "second_per_grid_ts"):
            if key in inputs and tps and videos:
                if len(set(rates)) > 1 and interleave:
                    raise ModelError("hf: videos of one conversation sampled at different rates cannot be interleaved")
                inputs[key] = torch.tensor([tps / r for r in rates], dtype=torch.float32)
        return inputs

    def _record_grids(self, inputs, rows: list[dict], metas: list[dict]) -> None:
        """Per video: frames and size decoded, the grid (t, h, w) the processor made of them, the size it
        resized each frame to, and the rate and seconds per temporal grid step sent."""
        grid = inputs.get("video_grid_thw")
        if grid is None:
            return
        vp = getattr(self._proc, "video_processor", None)
        patch = getattr(vp, "patch_size", None) or 14
        tps = getattr(vp, "temporal_patch_size", None) or 1
        k = 0
        for row, meta in zip(rows, metas, strict=True):
            for frames, rate in zip(row["videos"], row["rates"], strict=True):
                t, h, w = (int(x) for x in grid[k].tolist())
                meta.setdefault("video", []).append(
                    {
                        "frames": int(frames.shape[0]),
                        "decoded_hw": [int(frames.shape[1]), int(frames.shape[2])],
                        "grid_thw": [t, h, w],
                        "processed_hw": [h * patch, w * patch],
                        "fps": round(rate, 6),
                        "second_per_grid": round(tps / rate, 6),
                    }
                )
                k += 1

    def _modalities(self, conv: Conversation, ids_row) -> tuple[str, ...]:
        mods = ["T"] if _media.text_modality(conv) else []
        present = set(ids_row.tolist())
        for mod in ("A", "V"):
            if self._ids[mod] & present:
                mods.append(mod)
        return tuple(mods)

    def activate_adapters(self, inputs: dict, task: str | None = None) -> str | None:
        """Activate the card adapter the forward's `inputs` call for (`_card_adapters.select`), with the adapter
        `task` on top when given; returns the card adapter's name (None: none). ModelError when rows of the batch
        would each pick a different one alone (`_card_adapters.select_rows`): the card picks one per forward."""
        name = _card_adapters.select(self.card_adapters, inputs)
        ids = inputs.get("input_ids")
        if ids is not None and ids.shape[0] > 1:
            rows = _card_adapters.select_rows(self.card_adapters, ids, self.placeholder_ids)
            if len(set(rows)) > 1:
                raise ModelError(
                    f"hf: the rows of this batch call for different card adapters ({rows}); a forward activates one, "
                    f"so each row must be sent alone or with rows of its own kind (batch size 1; family batch policy "
                    f"{self.family.batch!r})"
                )
        _card_adapters.activate(self._model, name, task)
        return name

    def _select_adapter(self, inputs: dict, metas: list[dict]) -> None:
        """Activate the adapters the forward's inputs call for (`activate_adapters`; the task adapter on top) and
        record in each row's meta which answered (`meta["adapters"]`: e.g. ["speech", "task"], [] = the base)."""
        active: list[str] = []
        if self.card_adapters:
            task = _card_adapters.TASK if self.spec.adapter else None
            active = [n for n in (self.activate_adapters(inputs, task), task) if n]
        elif self.spec.adapter:
            active = [_card_adapters.TASK]
        if self.card_adapters or self.spec.adapter:
            for meta in metas:
                meta["adapters"] = active

    # ---- generate / score -----------------------------------------------------------------
    accepts_seeds = True

    def generate(
        self, batch: list[Conversation], gen: GenerationSpec, seeds: list[int] | None = None
    ) -> list[Generation]:
        """Greedy or sampled answers. Sampling with `seeds` (one per conversation) runs each conversation
        alone after torch.manual_seed(its seed), so batch size never changes a sampled answer; without
        seeds a sampled batch is seeded once with options.seed."""
        import torch

        self.load()
        batch = [self.prepare(c) for c in batch]  # no-op for parts the runner already prepared
        groups = families.batches(self.family, batch, [self._carries_audio(c) for c in batch])
        if len(groups) > 1:  # outputs would depend on batch-mates (families.BATCH_POLICIES): one forward per group
            out: list[Generation | None] = [None] * len(batch)
            for idx in groups:
                part = self.generate([batch[i] for i in idx], gen, [seeds[i] for i in idx] if seeds else None)
                for i, g in zip(idx, part, strict=True):
                    out[i] = g
            return out
        sample = gen.temperature > 0
        if sample and seeds is not None and len(batch) > 1:
            return [g for conv, s in zip(batch, seeds, strict=True) for g in self.generate([conv], gen, [s])]
        self.load()
        if sample:
            torch.manual_seed(seeds[0] if seeds else int(self.opts.get("seed", 0)))
        inputs, metas = self._encode_sent(batch, gen)
        self._select_adapter(inputs, metas)
        tok = getattr(self._proc, "tokenizer", self._proc)
        kw: dict[str, Any] = {
            "max_new_tokens": gen.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": list(self.end_ids),  # every end token of the checkpoint and its template
        }
        if sample:
            kw.update(temperature=gen.temperature, top_p=gen.top_p)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self._model.generate(**inputs, **kw)
        if not torch.is_tensor(out):
            out = out.sequences if hasattr(out, "sequences") else out[0]
        n_in = inputs["input_ids"].shape[1]
        new = out[:, n_in:].tolist()
        gens = []
        for i, conv in enumerate(batch):
            # the answer ends at the first end token (counted, as vLLM and servers count it); what a
            # model writes after it is an invented continuation, and a finished row's tail is padding
            n_out, finish = stops.cut_at_end(new[i], self.end_ids, gen.max_new_tokens)
            decoded = tok.decode(new[i][:n_out], skip_special_tokens=True).strip()
            answer, reasoning = _chat.split_answer(decoded, bool(metas[i].get("reasoning_opened")))
            gens.append(
                Generation(
                    text=answer,
                    reasoning=reasoning,
                    modalities=self._modalities(conv, inputs["input_ids"][i]),
                    n_input_tokens=int(inputs["attention_mask"][i].sum()),
                    n_output_tokens=n_out,
                    finish_reason=finish,
                    meta=_meta(conv, metas[i]),
                )
            )
        return gens

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Sum of log p(option tokens | prompt) per option: one forward of each prompt (with its media),
        then all options from its KV cache (`models._score`; exact, see the tokenisation boundary there).
        A template that opens a reasoning block ("…assistant\\n<think>\\n") has it closed empty first, as
        the family's non-thinking template does (`_chat.close_reasoning`; meta["reasoning_closed"])."""
        import torch

        if not options:
            raise ModelError("hf: score mode needs at least one candidate option")
        self.load()
        batch = [self.prepare(c) for c in batch]
        tok = getattr(self._proc, "tokenizer", self._proc)
        out = []
        for conv in batch:
            msgs = self.chat_inputs(conv, gen)[0]
            text = self._proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            text = _chat.close_reasoning(text)[0]  # options follow a closed, empty reasoning block
            try:
                back, conts = _score.continuations(tok, text, list(options))
            except ValueError as e:
                raise ModelError(f"hf: {e}") from e
            inputs, metas = self._encode_sent([conv], gen, close=True)
            self._select_adapter(inputs, metas)
            n_prompt = int(inputs["attention_mask"][0].sum())
            if back:  # the last prompt tokens merge with the options: score them with each option
                inputs["input_ids"] = inputs["input_ids"][:, :-back]
                inputs["attention_mask"] = inputs["attention_mask"][:, :-back]
            with torch.inference_mode():
                lps = _score.option_logprobs(self._model, inputs, conts, tok.pad_token_id)
            out.append(
                options_.score_generation(
                    dict(zip(options, lps, strict=True)),
                    gen.decision,
                    modalities=self._modalities(conv, inputs["input_ids"][0]),
                    n_input_tokens=n_prompt,
                    meta=_meta(conv, metas[0]),
                )
            )
        return out

    def close(self) -> None:
        self._model = None
        self._proc = None


def _meta(conv: Conversation, sent: dict) -> dict:
    """Generation.meta: notes on missing/trimmed media plus what the processor was sent (`encode`)."""
    notes = _media.part_notes(conv)
    return {**({"notes": notes} if notes else {}), **sent}


def _to_device(inputs: dict, device):
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in inputs.items()}
