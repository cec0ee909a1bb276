"""`hf`: transformers chat models that take audio and/or video (Qwen2.5-Omni / Qwen3-Omni thinker,
Qwen2-Audio, Qwen2-VL / Qwen2.5-VL and other AutoProcessor + chat-template models).

Decoded frames go to the processor as `videos` and decoded 16 kHz audio as `audio`, each as its
own chat part (the audio of a video is never left to `use_audio_in_video`). Every Generation
records which modalities reached the model, counted from the placeholder tokens in input_ids.

Options (ModelSpec.options): dtype (auto|float32|bfloat16|float16), device (auto|cpu|cuda[:n]),
device_map, attn_implementation, model_class (a transformers class name; default from the
config's architectures; a full Omni model loads its thinker), seed (0), merge_adapter (true),
trust_remote_code (false), media_cache (true). ModelSpec.adapter: a LoRA folder applied with peft.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import ModelError, require
from ..specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..types import Generation
from . import _chat, _media
from .base import Conversation, Model

# full omni models -> (class to load, attribute holding the text-producing thinker)
THINKER_OF = {
    "Qwen2_5OmniForConditionalGeneration": "Qwen2_5OmniThinkerForConditionalGeneration",
    "Qwen3OmniMoeForConditionalGeneration": "Qwen3OmniMoeThinkerForConditionalGeneration",
}
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
        self._processor = None
        self.thinker_prefix = ""  # "thinker." when the checkpoint is a full Omni model whose thinker we load
        self._fingerprint: str | None = None
        if spec.adapter and not Path(spec.adapter).is_dir():
            raise ModelError(f"hf: LoRA adapter folder not found: {spec.adapter}")

    # ---- identity -------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256(canonical_json(self.spec.model_dump(mode="json")).encode())
            if Path(self.spec.name).is_dir():
                h.update(_media.folder_identity(self.spec.name, WEIGHT_FILES).encode())
            if self.spec.adapter:
                h.update(b"adapter:" + _media.folder_identity(self.spec.adapter, ADAPTER_FILES).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def info(self) -> dict:
        import torch
        import transformers

        info = {"torch": torch.__version__, "transformers": transformers.__version__}
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
                processor_class=type(self._processor).__name__,
                attn_implementation=getattr(self._model.config, "_attn_implementation", None),
            )
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
        return self._processor

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
        try:
            config = transformers.AutoConfig.from_pretrained(name, trust_remote_code=trust)
            proc = transformers.AutoProcessor.from_pretrained(name, trust_remote_code=trust)
        except Exception as e:
            raise ModelError(f"hf: cannot load config/processor of {name!r}: {e}") from e
        cls_name = o.get("model_class") or (config.architectures or ["AutoModelForImageTextToText"])[0]
        full = cls_name in THINKER_OF and not o.get("model_class")
        cls = getattr(transformers, cls_name, None)
        if cls is None:
            raise ModelError(f"hf: transformers {transformers.__version__} has no class {cls_name!r} (upgrade it)")
        kwargs: dict[str, Any] = {"dtype": dtype}
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
        if self.spec.adapter:
            peft = require("peft", "finetune", "LoRA adapters")
            model = peft.PeftModel.from_pretrained(model, self.spec.adapter)
            if o.get("merge_adapter", True):
                model = model.merge_and_unload()
        model.eval()
        tok = getattr(proc, "tokenizer", proc)
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._processor, self._model, self.device = proc, model, device
        self._ids = _chat.placeholder_ids(proc)

    @property
    def accepts(self) -> set[str]:
        """Which media part kinds the processor can take."""
        self.load()
        return _chat.processor_kinds(self.processor)

    # ---- inputs ---------------------------------------------------------------------------
    def prepare(self, conversation: Conversation) -> Conversation:
        return _media.prepare_media(conversation, self.media, self._cache)

    def chat_inputs(self, conv: Conversation, gen: GenerationSpec):
        """(chat-template messages, videos, audios, images) of one prepared conversation; media arrays in order
        (videos: frames (T, H, W, 3) uint8; audios: 16 kHz float32 mono; images: (H, W, 3))."""
        msgs, media = _chat.chat_messages(conv, gen, self.accepts)
        videos = [p.data.frames for p in media if p.kind == "video"]
        audios = [p.data.audio for p in media if p.kind == "audio"]
        images = [p.data.frames[0] for p in media if p.kind == "image"]
        return msgs, videos, audios, images

    def encode(self, batch: list[Conversation], gen: GenerationSpec, suffixes: list[str] | None = None):
        """Processor outputs (input_ids, attention_mask, media features; left-padded, on the model's device) of
        prepared conversations, each rendered with the generation prompt and followed by `suffixes[i]`.

        Raises ModelError when the processor rejects the inputs."""
        self.load()
        proc = self._processor
        texts, videos, audios, images = [], [], [], []
        for i, conv in enumerate(batch):
            msgs, v, a, im = self.chat_inputs(conv, gen)
            text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            texts.append(text + (suffixes[i] if suffixes else ""))
            videos += v
            audios += a
            images += im
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if videos:
            kwargs["videos"] = videos
            kwargs["videos_kwargs"] = {"fps": float(self.media.fps)}
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = self.media.sample_rate
        if images:
            kwargs["images"] = images
        try:
            inputs = proc(**kwargs)
        except Exception as e:
            raise ModelError(f"hf: the processor of {self.spec.name!r} rejected the inputs: {e}") from e
        return inputs.to(self.device)

    def _modalities(self, conv: Conversation, ids_row) -> tuple[str, ...]:
        mods = ["T"] if _media.text_modality(conv) else []
        present = set(ids_row.tolist())
        for mod in ("A", "V"):
            if self._ids[mod] & present:
                mods.append(mod)
        return tuple(mods)

    def _seed(self) -> None:
        import torch

        torch.manual_seed(int(self.opts.get("seed", 0)))

    # ---- generate / score -----------------------------------------------------------------
    def generate(self, batch: list[Conversation], gen: GenerationSpec) -> list[Generation]:
        import torch

        self.load()
        self._seed()
        batch = [self.prepare(c) for c in batch]  # no-op for parts the runner already prepared
        inputs = self.encode(batch, gen)
        tok = getattr(self._processor, "tokenizer", self._processor)
        sample = gen.temperature > 0
        kw: dict[str, Any] = {
            "max_new_tokens": gen.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": tok.pad_token_id,
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
        new = out[:, n_in:]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        stop = {tok.pad_token_id, tok.eos_token_id}
        gens = []
        for i, conv in enumerate(batch):
            row_in = inputs["input_ids"][i]
            n_real = int(inputs["attention_mask"][i].sum())
            n_out = 0
            for t in new[i].tolist():
                if t in stop:
                    break
                n_out += 1
            gens.append(
                Generation(
                    text=texts[i].strip(),
                    modalities=self._modalities(conv, row_in),
                    n_input_tokens=n_real,
                    n_output_tokens=n_out,
                    meta={"notes": _media.part_notes(conv)} if _media.part_notes(conv) else {},
                )
            )
        return gens

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Sum of log p(option tokens | prompt) per option; one forward pass per conversation."""
        import torch

        if not options:
            raise ModelError("hf: score mode needs at least one candidate option")
        self.load()
        self._seed()
        batch = [self.prepare(c) for c in batch]
        tok = getattr(self._processor, "tokenizer", self._processor)
        out = []
        for conv in batch:
            inputs = self.encode([conv] * len(options), gen, suffixes=list(options))
            with torch.inference_mode():
                logits = self._model(**inputs).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            ids = inputs["input_ids"]
            scores = {}
            for j, opt in enumerate(options):
                n = len(tok(opt, add_special_tokens=False)["input_ids"])
                target = ids[j, -n:]
                lp = logp[j, -n:].gather(-1, target[:, None]).sum()  # left padding: option is the row's tail
                scores[opt] = float(lp)
            notes = _media.part_notes(conv)
            out.append(
                Generation(
                    text=max(scores, key=scores.get),
                    modalities=self._modalities(conv, ids[0]),
                    n_input_tokens=int(inputs["attention_mask"][0].sum())
                    - len(tok(options[0], add_special_tokens=False)["input_ids"]),
                    scores=scores,
                    meta={"notes": notes} if notes else {},
                )
            )
        return out

    def close(self) -> None:
        self._model = None
        self._processor = None
