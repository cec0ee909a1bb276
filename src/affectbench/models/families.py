"""Model families of the zoo: per-family media recipe, how parts are sent, BOS handling, batching
policy, and what a processor can take (discovered from the processor itself).

A *family* is identified by the checkpoint's `config.json` `model_type`. Its `Recipe` holds the
media settings its documentation prescribes (frames, pixels, sampling rate, system prompt), each
with its source; a recipe applies to every `MediaSpec` field left at the global default, and
`ModelSpec.options["recipe"]` overrides it field by field. The effective recipe is recorded in
`HFModel.info()` and hashed into the fingerprint (it is part of a run's identity).

Families whose processor has no video processor (Gemma 3n, Phi-4-multimodal) get a clip's
sampled frames as image parts (`video: frames`; how many is the recipe's `max_frames`).
Families that need remote code are documented here as `runs_on: vllm / openai` only; the hf
backend never passes `trust_remote_code` unless the run's options say so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.errors import ModelError
from ..core.specs import MediaSpec
from ..core.types import Message, Part
from ..media import DecodedClip
from . import _media
from .base import Conversation

KINDS = ("audio", "video", "image")
KIND_MODALITY = {"audio": "A", "video": "V", "image": "V"}


@dataclass(frozen=True)
class Recipe:
    """Media settings a family's documentation prescribes; None leaves the MediaSpec value.

    video: "video" (the processor takes frame stacks), "frames" (sampled frames sent as image
    parts, `max_frames` of them), "none" (the family takes no visual input).
    fps (frames/s), max_frames, max_pixels (per frame), sample_rate (Hz), max_seconds (s).
    sources: field → where the value comes from ("project choice" when the docs are silent).
    """

    video: str = "video"
    fps: float | None = None
    max_frames: int | None = None
    max_pixels: int | None = None
    sample_rate: int | None = None
    max_seconds: float | None = None
    system_prompt: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    MEDIA_FIELDS = ("fps", "max_frames", "max_pixels", "sample_rate", "max_seconds")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# What may share one forward pass (hf) or one engine step (vllm, a server) without changing a sample's output.
BATCH_POLICIES = {
    "any": "batch freely (batched output = single-sample output, tested per family)",
    "single": "one sample per forward: outputs depend on batch-mates",
    "one_audio_length": "audio clips of different lengths never share a forward: the audio encoder pads "
    "every clip to the batch's longest and its output depends on that padding",
}


@dataclass(frozen=True)
class Family:
    """One architecture family: how to identify, feed and batch it, and what is tested here."""

    key: str
    title: str
    model_types: tuple[str, ...]  # config.json model_type values (thinker configs included)
    classes: tuple[str, ...] = ()  # transformers classes that run it
    recipe: Recipe = Recipe()
    batch: str = "any"  # the batch policy, see BATCH_POLICIES
    runs_on: str = "hf"  # "hf", or "vllm / openai" for remote-code families
    remote_code: bool = False
    tested: str | None = None  # the test that drives a tiny real architecture of it through the runner
    notes: str = ""


_QWEN_OMNI_SRC = "qwen-omni-utils (FPS=2.0, VIDEO_MAX_PIXELS=768*28*28, FPS_MAX_FRAMES=768); Whisper features at 16 kHz"
_QWEN_VL_SRC = "qwen-vl-utils (FPS=2.0, VIDEO_MAX_PIXELS=768*28*28, FPS_MAX_FRAMES=768)"
_QWEN_VIDEO = {"fps": 2.0, "max_pixels": 768 * 28 * 28, "sample_rate": 16000}
PROJECT = "project choice (the family's docs give no video recipe)"


def _each(fields: tuple[str, ...], source: str) -> dict[str, str]:
    return dict.fromkeys(fields, source)


FAMILIES: tuple[Family, ...] = (
    Family(
        "qwen2_5_omni",
        "Qwen2.5-Omni",
        ("qwen2_5_omni", "qwen2_5_omni_thinker"),
        ("Qwen2_5OmniThinkerForConditionalGeneration",),
        Recipe(
            **_QWEN_VIDEO,
            system_prompt=(
                "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                "auditory and visual inputs, as well as generating text and speech."
            ),
            sources={
                **_each(("fps", "max_pixels", "sample_rate"), _QWEN_OMNI_SRC),
                "system_prompt": "Qwen/Qwen2.5-Omni-7B model card (default system prompt)",
            },
        ),
        tested="tests/models/test_zoo.py::test_family_end_to_end[qwen2_5_omni]",
    ),
    Family(
        "qwen3_omni_moe",
        "Qwen3-Omni",
        ("qwen3_omni_moe", "qwen3_omni_moe_thinker"),
        ("Qwen3OmniMoeThinkerForConditionalGeneration",),
        Recipe(**_QWEN_VIDEO, sources=_each(("fps", "max_pixels", "sample_rate"), _QWEN_OMNI_SRC)),
        tested="tests/models/test_zoo.py::test_family_end_to_end[qwen3_omni_moe]",
    ),
    Family(
        "gemma3n",
        "Gemma 3n",
        ("gemma3n",),
        ("Gemma3nForConditionalGeneration",),
        Recipe(
            video="frames",
            max_frames=8,
            max_pixels=768 * 768,
            sample_rate=16000,
            max_seconds=30.0,
            sources={
                "video": "no video processor in transformers: frames as images",
                "max_frames": "8 frames: " + PROJECT,
                "max_pixels": "Gemma 3n docs: images at 256, 512 or 768 px square (processor default 768)",
                "sample_rate": "Gemma3nAudioFeatureExtractor (16 kHz)",
                "max_seconds": "Gemma3nProcessor audio_seq_length 188 soft tokens = 30 s at one token per 160 ms",
            },
        ),
        batch="one_audio_length",
        tested="tests/models/test_zoo.py::test_family_end_to_end[gemma3n]",
        notes="chat template writes <bos>; vision: MobileNet-V5 (timm); audio: USM-based encoder, whose output "
        "moves with a longer batch-mate's padding (vllm PR #20495 / #24052: the batch is padded to its longest clip)",
    ),
    Family(
        "phi4_multimodal",
        "Phi-4-multimodal",
        ("phi4_multimodal",),
        ("Phi4MultimodalForCausalLM",),
        Recipe(
            video="frames",
            max_frames=8,
            max_pixels=448 * 448,
            sample_rate=16000,
            sources={
                "video": "no video processor in transformers: frames as images",
                "max_frames": "8 frames: " + PROJECT,
                "max_pixels": "Phi4MultimodalImageProcessor crop size 448",
                "sample_rate": "Phi4MultimodalFeatureExtractor (16 kHz)",
            },
        ),
        batch="single",
        tested="tests/models/test_zoo.py::test_family_end_to_end[phi4_multimodal]",
        notes="an image anywhere in a batch switches every audio row to the vision-speech LoRA, and padded "
        "audio changes encoder states: one sample per forward",
    ),
    Family(
        "qwen2_5_vl",
        "Qwen2.5-VL",
        ("qwen2_5_vl",),
        ("Qwen2_5_VLForConditionalGeneration",),
        Recipe(video="video", fps=2.0, max_pixels=768 * 28 * 28, sources=_each(("fps", "max_pixels"), _QWEN_VL_SRC)),
        tested="tests/models/test_zoo.py::test_family_end_to_end[qwen2_5_vl]",
    ),
    Family(
        "qwen2_vl",
        "Qwen2-VL",
        ("qwen2_vl",),
        ("Qwen2VLForConditionalGeneration",),
        Recipe(video="video", fps=2.0, max_pixels=768 * 28 * 28, sources=_each(("fps", "max_pixels"), _QWEN_VL_SRC)),
        tested="tests/models/test_zoo.py::test_family_end_to_end[qwen2_vl]",
    ),
    Family(
        "qwen3_vl",
        "Qwen3-VL",
        ("qwen3_vl", "qwen3_vl_moe"),
        ("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration"),
        Recipe(fps=2.0, sources={"fps": "qwen-vl-utils FPS=2.0"}),
    ),
    Family(
        "qwen2_audio",
        "Qwen2-Audio",
        ("qwen2_audio",),
        ("Qwen2AudioForConditionalGeneration",),
        Recipe(
            video="none",
            sample_rate=16000,
            max_seconds=30.0,
            sources=_each(("sample_rate", "max_seconds"), "WhisperFeatureExtractor (16 kHz, 30 s windows)"),
        ),
        tested="tests/models/test_zoo.py::test_family_end_to_end[qwen2_audio]",
    ),
    Family(
        "voxtral",
        "Voxtral",
        ("voxtral",),
        ("VoxtralForConditionalGeneration",),
        Recipe(video="none", sample_rate=16000, sources={"sample_rate": "WhisperFeatureExtractor (16 kHz)"}),
        notes="not built here: transformers VoxtralProcessor needs mistral-common (its Tekken tokenizer)",
    ),
    *(
        Family(key, title, (key,), runs_on="vllm / openai", remote_code=True, recipe=Recipe(), notes=note)
        for key, title, note in (
            (
                "minicpmo",
                "MiniCPM-o",
                "vLLM 0.32 implements it (architecture MiniCPMO); its config/processor are remote code: backend "
                "vllm with options.trust_remote_code: true (your opt-in), or `vllm serve --trust-remote-code` + openai",
            ),
            (
                "baichuan_omni",
                "Baichuan-Omni",
                "not in vLLM 0.32's registry; serve the authors' code behind an OpenAI-compatible server (openai)",
            ),
            ("ola", "Ola", "not in vLLM 0.32's registry; serve the authors' code behind an OpenAI-compatible server"),
            (
                "videollama2",
                "VideoLLaMA2-AV",
                "not in vLLM 0.32's registry; serve the authors' code behind an OpenAI-compatible server",
            ),
            (
                "humanomni",
                "HumanOmni",
                "not in vLLM 0.32's registry; serve the authors' code behind an OpenAI-compatible server",
            ),
        )
    ),
)

GENERIC = Family("generic", "other AutoProcessor models", ())
BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


# ---- identification ------------------------------------------------------------------------
def local_config(name: str) -> dict[str, Any]:
    """`config.json` of a local model folder or of a hub id already in the HF cache ({} when absent)."""
    path = Path(name) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except Exception:
            cached = None
        if not isinstance(cached, str):
            return {}
        path = Path(cached)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def family_of(config: dict[str, Any] | None) -> Family:
    """The family of a checkpoint from its config dict (`model_type`); GENERIC when unknown."""
    return BY_TYPE.get(str((config or {}).get("model_type", "")), GENERIC)


def recipe_for(family: Family, overrides: dict[str, Any] | None = None) -> Recipe:
    """The family's recipe with `overrides` (ModelSpec.options["recipe"]) applied; unknown keys raise."""
    if not overrides:
        return family.recipe
    known = {"video", "system_prompt", *Recipe.MEDIA_FIELDS}
    bad = set(overrides) - known
    if bad:
        raise ModelError(f"hf: unknown recipe option(s) {sorted(bad)}; use {sorted(known)}")
    if "video" in overrides and overrides["video"] not in ("video", "frames", "none"):
        raise ModelError(f"hf: recipe video must be video, frames or none; got {overrides['video']!r}")
    sources = dict(family.recipe.sources)
    sources.update({k: "ModelSpec.options.recipe" for k in overrides})
    return replace(family.recipe, **overrides, sources=sources)


def effective_media(media: MediaSpec, recipe: Recipe) -> MediaSpec:
    """`media` with the recipe's values in every field left at MediaSpec's global default."""
    default = MediaSpec()
    update = {
        k: getattr(recipe, k)
        for k in Recipe.MEDIA_FIELDS
        if getattr(recipe, k) is not None and getattr(media, k) == getattr(default, k)
    }
    return media.model_copy(update=update) if update else media


# ---- capability discovery -------------------------------------------------------------------
def capabilities(proc) -> dict[str, str]:
    """Media kind → the processor attribute that takes it, found by each sub-processor's base class
    (image processor, video processor, sequence feature extractor), whatever the attribute is named
    (Phi-4: `audio_processor`; Qwen/Gemma: `feature_extractor`)."""
    from transformers.feature_extraction_utils import FeatureExtractionMixin
    from transformers.image_processing_base import ImageProcessingMixin

    try:
        from transformers.video_processing_utils import BaseVideoProcessor
    except ImportError:  # pragma: no cover - older transformers
        BaseVideoProcessor = ()  # noqa: N806
    names = proc.get_attributes() if hasattr(proc, "get_attributes") else list(getattr(proc, "attributes", []))
    caps: dict[str, str] = {}
    for name in names:
        sub = getattr(proc, name, None)
        if sub is None:
            continue
        if BaseVideoProcessor and isinstance(sub, BaseVideoProcessor):
            caps.setdefault("video", name)
        elif isinstance(sub, ImageProcessingMixin):
            caps.setdefault("image", name)
        elif isinstance(sub, FeatureExtractionMixin):
            caps.setdefault("audio", name)
    return caps


def sendable(caps: dict[str, str], recipe: Recipe) -> set[str]:
    """Part kinds the model can be sent: the processor's, plus video when frames go as images."""
    kinds = set(caps)
    if recipe.video == "frames" and "image" in caps:
        kinds.add("video")
    if recipe.video == "none":
        kinds.discard("video")
    return kinds


def check_modalities(name: str, caps: dict[str, str], recipe: Recipe, modalities: str) -> None:
    """Raise ModelError when a requested modality (MediaSpec.modalities) cannot reach the model."""
    kinds = sendable(caps, recipe)
    missing = []
    if "A" in modalities and "audio" not in kinds:
        missing.append("A (no audio feature extractor)")
    if "V" in modalities and not ({"video", "image"} & kinds):
        missing.append("V (no image or video processor)")
    if missing:
        can = "T" + ("A" if "audio" in kinds else "") + ("V" if {"video", "image"} & kinds else "")
        raise ModelError(
            f"hf: {name!r} cannot take requested modalities {', '.join(missing)}; its processor has "
            f"{sorted(caps.values()) or 'no media sub-processors'}. Set media.modalities to {can!r}"
        )


def as_sent(conv: Conversation, caps: dict[str, str], recipe: Recipe) -> Conversation:
    """The conversation in the parts the processor takes: each usable video part becomes one image
    part per sampled frame when the family sends frames; a usable part of a kind the model cannot
    take raises ModelError (never dropped silently)."""
    kinds = sendable(caps, recipe)
    out: list[Message] = []
    for msg in conv:
        parts: list[Part] = []
        for p in msg.parts:
            if p.kind == "text" or not _media.usable(p):
                parts.append(p)
            elif p.kind == "video" and recipe.video == "frames" and "video" not in caps:
                parts += frames_as_images(p)
            elif p.kind in kinds:
                parts.append(p)
            else:
                raise ModelError(
                    f"hf: a {p.kind} part ({Path(p.path or '').name}) cannot be sent: the processor takes "
                    f"{sorted(kinds) or 'text only'}; drop {KIND_MODALITY[p.kind]} from media.modalities"
                )
        out.append(Message(role=msg.role, parts=parts))
    return out


def frames_as_images(part: Part) -> list[Part]:
    """One image part per decoded frame of a video part (frames T×H×W×3 → T parts of 1×H×W×3)."""
    clip: DecodedClip = part.data
    return [
        Part(
            kind="image",
            path=part.path,
            span=part.span,
            data=replace(clip, frames=clip.frames[i : i + 1], frame_times=clip.frame_times[i : i + 1]),
        )
        for i in range(len(clip.frames))
    ]


# ---- chat template and BOS ------------------------------------------------------------------
def ensure_chat_template(proc, name: str) -> None:
    """Give a processor that lost its chat template on reload (Phi-4-multimodal, transformers 5.x)
    its tokenizer's template; raise ModelError when neither has one."""
    if getattr(proc, "chat_template", None):
        return
    tok = getattr(proc, "tokenizer", None)
    template = getattr(tok, "chat_template", None)
    if not template:
        raise ModelError(f"hf: neither the processor nor the tokenizer of {name!r} has a chat template")
    proc.chat_template = template


def add_special_tokens(tok, texts: list[str]) -> bool:
    """Whether the tokenizer should add its special tokens: not when every rendered chat text already
    starts with BOS (Gemma templates write `<bos>`; the tokenizer would add a second one)."""
    bos = getattr(tok, "bos_token", None)
    return not (bos and texts and all(t.startswith(bos) for t in texts))


def audio_lengths(conv: Conversation) -> tuple[int, ...]:
    """Sample counts of the usable audio parts of a prepared conversation (the clips its audio encoder sees)."""
    return tuple(len(p.data.audio) for m in conv for p in m.parts if p.kind == "audio" and _media.usable(p))


def batches(family: Family, convs: list[Conversation], together: list[Any] | None = None) -> list[list[int]]:
    """Indices of the sub-batches that may share one forward pass, in order, under the family's policy
    (`BATCH_POLICIES`): "single" gives one each; "one_audio_length" keeps rows whose audio clips differ in
    length apart (a row holding clips of two lengths goes alone). `together` (one value per row, None =
    no constraint) adds a constraint of the caller's: rows with different values never share a forward
    (hf: whether a row's videos carry their interleaved audio, since `use_audio_in_video` is one flag per
    forward in the Qwen-Omni models). A row joins the first sub-batch all of whose constraints it meets."""
    n = len(convs)
    if family.batch == "single":
        return [[i] for i in range(n)]
    keys: list[dict[str, Any]] = [{} for _ in range(n)]
    for i, conv in enumerate(convs):
        if family.batch == "one_audio_length":
            lengths = set(audio_lengths(conv))
            if lengths:
                keys[i]["audio"] = lengths.pop() if len(lengths) == 1 else ("alone", i)
        if together is not None and together[i] is not None:
            keys[i]["together"] = together[i]
    groups: list[tuple[dict[str, Any], list[int]]] = []
    for i, key in enumerate(keys):
        for fixed, members in groups:
            if all(fixed.get(k, v) == v for k, v in key.items()):
                fixed.update(key)
                members.append(i)
                break
        else:
            groups.append((dict(key), [i]))
    return [members for _, members in groups]


def serial(family: Family, modalities: str = "TAV") -> bool:
    """Whether engines that batch requests themselves (vLLM's scheduler, a server under concurrent requests)
    must get one request at a time to obey the family's policy: "single" always, "one_audio_length" when
    audio is sent (they cannot keep clips of different lengths apart)."""
    return family.batch == "single" or (family.batch == "one_audio_length" and "A" in modalities)


def concurrency(name: str, options: dict[str, Any], modalities: str, default: int = 4) -> int:
    """Requests a client may have in flight for a model (`options["concurrency"]`, else `default`): 1 when
    the family is `serial` (a server batches concurrent requests; Phi-4-multimodal degraded under
    concurrency, vllm #18360). Raises ModelError when the options ask for more for such a family."""
    family = family_named(name, options)
    asked = options.get("concurrency")
    if serial(family, modalities):
        if asked is not None and int(asked) > 1:
            raise ModelError(
                f"{family.title} takes one request at a time (batch policy {family.batch!r}: "
                f"{BATCH_POLICIES[family.batch]}); drop concurrency={asked}"
            )
        return 1
    return max(1, int(asked if asked is not None else default))


def family_named(name: str, options: dict[str, Any] | None = None) -> Family:
    """The family of a model: `options["family"]` (a family key, for a served model whose config is not
    on this machine) or its local / cached `config.json`; GENERIC when neither says."""
    key = (options or {}).get("family")
    if key:
        for f in FAMILIES:
            if f.key == key:
                return f
        raise ModelError(f"unknown model family {key!r}; known: {sorted(f.key for f in FAMILIES)}")
    return family_of(local_config(name))


# ---- listing --------------------------------------------------------------------------------
def table() -> list[dict[str, str]]:
    """One row per family: what runs it, how video is sent, and what is tested here."""
    rows = []
    for f in FAMILIES:
        if f.tested:
            status = "tested: tiny real architecture"
        elif f.runs_on == "hf":
            status = "documented (hf)"
        else:
            status = f"documented ({f.runs_on}; remote code)"
        rows.append(
            {
                "family": f.title,
                "key": f.key,
                "runs_on": f.runs_on,
                "video": f.recipe.video if f.runs_on == "hf" else "-",
                "batch": f.batch,
                "status": status,
                "test": f.tested or "",
                "notes": f.notes,
            }
        )
    return rows
