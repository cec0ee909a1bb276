"""`cascade`: the embedded default. Packaged perception models turn video/audio into text cues; a
small real text LLM (Gemma-3-270M, from its packaged GGUF) answers. `experts`: the same cues as a
knowledge writer (no LLM).

ModelSpec.name: "" (the packaged Gemma-3-270M) or a local transformers checkpoint folder.
ModelSpec.adapter: a LoRA folder (peft). Options:
- `experts` (["asr", "face", "prosody", "lexicon"]): which perception experts run.
- `frames` (8): frames sampled per clip for the face expert.
- `asr_transcript` ("auto"): put the recognised speech in the prompt — "auto" does so only when
  the text modality is off (the prompt then carries no transcript), "always", or "never".
- `score_batch` (8): sequences per forward pass when scoring options.
- `cache_dir`: perception cache folder (default `<workspace>/cache/perception`, else ~/.cache/affectbench).

Score mode returns each option's summed token log-probability after the prompt; the answer follows from
the run's decision rule and calibration (`models.options`).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from ..core.errors import ModelError
from ..core.specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..core.types import Generation, Message, Part
from . import options as options_
from . import stops
from .base import Conversation, Model

CUE_PREFIX = "Automatic perception cues (may be wrong): "
ASR_PREFIX = 'Speech recognised in the clip: "'
DEFAULT_EXPERTS = ("asr", "face", "prosody", "lexicon")


class _Perceiver:
    """Shared by both backends: media parts of a conversation -> perception cues."""

    def __init__(self, spec: ModelSpec, media: MediaSpec, workspace: Path | None) -> None:
        o = spec.options
        self.experts = tuple(o.get("experts", DEFAULT_EXPERTS))
        self.frames = int(o.get("frames", 8))
        cache = o.get("cache_dir") or (Path(workspace) / "cache" / "perception" if workspace else None)
        self.cache_dir = Path(cache) if cache else None
        self.media = media

    def media_parts(self, conv: Conversation) -> dict[tuple[str, tuple[float, float] | None], set[str]]:
        """(path, span) -> {"video", "audio"} for every media part in the conversation."""
        found: dict[tuple[str, tuple[float, float] | None], set[str]] = {}
        for m in conv:
            for p in m.parts:
                if p.kind in ("video", "audio") and p.path:
                    found.setdefault((p.path, tuple(p.span) if p.span else None), set()).add(p.kind)
        return found

    def cues(self, conv: Conversation, *, use_transcript: bool = False) -> tuple[list[Any], set[str]]:
        """Cues per media file, and the modalities (T, A, V) the cues were computed from.

        The language comes from the prompt's text part (`sample_facts`); experts that do not read
        it are skipped with a note. With `use_transcript`, the dataset's transcript (present only
        when the prompt carries T) feeds the lexicon and no speech recognition runs.
        """
        from ..perception import perceive, perceive_text

        facts = sample_facts(conv)
        language = facts.get("language") or "en"
        text = facts.get("transcript") if use_transcript else None
        out, modalities = [], set()
        for (path, span), kinds in self.media_parts(conv).items():
            wanted: list[str] = []
            if "video" in kinds:
                wanted.append("face")
            if "audio" in kinds:
                wanted += ["asr", "prosody", "lexicon"]
            elif text is not None:
                wanted.append("lexicon")
            experts = tuple(e for e in self.experts if e in wanted)
            if not experts:
                continue
            c = perceive(
                path, span, experts=experts, cache_dir=self.cache_dir, frames=self.frames, text=text, language=language
            )
            if "lexicon" in c.results:
                if "asr" in self.experts:  # the words the ASR would have written, from the dataset
                    c.given_transcript = text
                text = None  # the transcript's words are read once, not once per media file
            out.append(c)
            modalities.update(c.modalities())
        if text is not None and "lexicon" in self.experts and not any("lexicon" in c.results for c in out):
            c = perceive_text(text, language=language, cache_dir=self.cache_dir)
            if "asr" in self.experts and "lexicon" in c.results:
                c.given_transcript = text
            out.append(c)
            modalities.update(c.modalities())
        return out, modalities


def sample_facts(conv: Conversation) -> dict[str, Any]:
    """The sample facts a prompt attaches to its text part (`language`, `transcript`), or {}."""
    for m in conv:
        for p in m.parts:
            if p.kind == "text" and isinstance(p.data, dict) and "language" in p.data:
                return p.data
    return {}


class CascadeModel(Model):
    """Perception cues + transcript + the prompt's text -> Gemma-3-270M (greedy generate, or option scoring)."""

    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        self.perceiver = _Perceiver(spec, self.media, workspace)
        self.asr_mode = str(spec.options.get("asr_transcript", "auto"))
        if self.asr_mode not in ("auto", "always", "never"):
            raise ModelError(f"cascade: asr_transcript must be auto, always or never; got {self.asr_mode!r}")
        self.score_batch = int(spec.options.get("score_batch", 8))
        if spec.adapter and not (Path(spec.adapter).expanduser() / "adapter_config.json").is_file():
            raise ModelError(f"cascade: LoRA adapter folder not found or not a peft folder: {spec.adapter}")
        self._lock = threading.Lock()
        self._fingerprint: str | None = None

    # ---- identity / loading ---------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256(canonical_json(self.spec.identity()).encode())
            if self.spec.adapter:
                for f in sorted(Path(self.spec.adapter).expanduser().glob("adapter_*")):
                    h.update(f.name.encode() + str(f.stat().st_size).encode() + str(f.stat().st_mtime_ns).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def lm(self) -> tuple[Any, Any]:
        """(tokenizer, model) of the text LLM, loaded once per process."""
        from . import textlm

        return textlm.load(self.spec.name, self.spec.adapter)

    def info(self) -> dict:
        import torch
        import transformers

        info: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__}
        info["llm"] = self.spec.name or "gemma-3-270m (packaged GGUF, dequantised to float32)"
        info["experts"] = list(self.perceiver.experts)
        return info

    # ---- conversations --------------------------------------------------------------------
    def prepare(self, conversation: Conversation) -> Conversation:
        """Replace video/audio parts by one text part of perception cues (and the ASR transcript when due)."""
        if not self.perceiver.media_parts(conversation):
            return conversation
        cues, modalities = self.perceiver.cues(conversation)
        lines = []
        cue_text = "; ".join(t for t in (c.text(transcript=False) for c in cues if c.results) if t != "no cues")
        if cue_text:
            lines.append(CUE_PREFIX + cue_text)
        add_asr = self.asr_mode == "always" or (self.asr_mode == "auto" and "T" not in self.media.modalities)
        if add_asr:
            heard = " ".join(c.transcript for c in cues if c.transcript)
            if heard:
                lines.append(ASR_PREFIX + heard + '"')
        cue_part = Part(kind="text", text="\n".join(lines) + "\n" if lines else "", data={"cue_modalities": modalities})
        out: Conversation = []
        placed = False
        for m in conversation:
            parts = []
            for p in m.parts:
                if p.kind in ("video", "audio", "image"):
                    if not placed:
                        parts.append(cue_part)
                        placed = True
                    continue
                parts.append(p)
            out.append(Message(role=m.role, parts=parts))
        return out

    @staticmethod
    def _modalities(conv: Conversation) -> tuple[str, ...]:
        got = {"T"}
        for m in conv:
            for p in m.parts:
                if isinstance(p.data, dict):
                    got |= set(p.data.get("cue_modalities", ()))
        return tuple(x for x in ("T", "A", "V") if x in got)

    def llm_prompt(self, conv: Conversation, gen: GenerationSpec | None = None) -> str:
        """The exact prompt string the LLM sees; fine-tuning trains on the same string."""
        return self.chat_text(conv, gen)

    def chat_text(self, conv: Conversation, gen: GenerationSpec | None = None) -> str:
        """The exact prompt string the LLM sees (chat template applied, generation prompt added)."""
        tok, _ = self.lm()
        msgs = []
        if gen is not None and gen.system_prompt:
            msgs.append({"role": "system", "content": gen.system_prompt})
        for m in conv:
            text = "".join(p.text or "" for p in m.parts if p.kind == "text")
            msgs.append({"role": m.role, "content": text})
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def _ready(self, batch: list[Conversation]) -> list[Conversation]:
        return [self.prepare(c) for c in batch]

    # ---- generate -------------------------------------------------------------------------
    accepts_seeds = True

    def generate(
        self, batch: list[Conversation], gen: GenerationSpec, seeds: list[int] | None = None
    ) -> list[Generation]:
        """Greedy or sampled answers; sampling with `seeds` (one per conversation) runs each conversation
        alone after torch.manual_seed(its seed), so batch size never changes a sampled answer."""
        import torch

        if gen.temperature > 0 and seeds is not None and len(batch) > 1:
            return [g for conv, s in zip(batch, seeds, strict=True) for g in self.generate([conv], gen, [s])]
        batch = self._ready(batch)
        tok, model = self.lm()
        prompts = [self.chat_text(c, gen) for c in batch]
        with self._lock, torch.inference_mode():
            tok.padding_side = "left"
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            ends = stops.end_token_ids(tok, getattr(model, "generation_config", None))
            kwargs: dict[str, Any] = {
                "max_new_tokens": gen.max_new_tokens,
                "pad_token_id": tok.pad_token_id,
                "eos_token_id": ends,
            }
            if gen.temperature > 0:
                torch.manual_seed(seeds[0] if seeds else 0)
                kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            out = model.generate(**enc, **kwargs)
        n_in = enc["input_ids"].shape[1]
        gens = []
        for i, conv in enumerate(batch):
            new = out[i, n_in:].tolist()
            n_out, finish = stops.cut_at_end(new, ends, gen.max_new_tokens)
            gens.append(
                Generation(
                    text=tok.decode(new[:n_out], skip_special_tokens=True).strip(),
                    modalities=self._modalities(conv),
                    n_input_tokens=int(enc["attention_mask"][i].sum()),
                    n_output_tokens=n_out,
                    finish_reason=finish,
                )
            )
        return gens

    # ---- score ----------------------------------------------------------------------------
    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Sum log-probability of each option's tokens after the prompt.

        Each prompt runs once; its KV cache is repeated for the options, which then run as one
        short batch (exact: equals scoring every prompt+option sequence separately).
        """
        import torch

        if not options:
            raise ModelError("cascade: score mode needs candidate options")
        batch = self._ready(batch)
        tok, model = self.lm()
        prompts = [tok(self.chat_text(c, gen), add_special_tokens=False)["input_ids"] for c in batch]
        opt_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
        if any(not ids for ids in opt_ids):
            raise ModelError("cascade: an option tokenises to nothing; options must be non-empty text")
        scores: list[list[float]] = []
        step = max(1, self.score_batch)
        with self._lock, torch.inference_mode():
            for start in range(0, len(prompts), step):
                scores += _option_logprobs(model, prompts[start : start + step], opt_ids, tok.pad_token_id)
        return [
            options_.score_generation(
                dict(zip(options, scores[b], strict=True)),
                gen.decision,
                modalities=self._modalities(conv),
                n_input_tokens=len(prompts[b]),
            )
            for b, conv in enumerate(batch)
        ]


def _option_logprobs(model: Any, prompts: list[list[int]], options: list[list[int]], pad: int) -> list[list[float]]:
    """log P(option | prompt) for every prompt × option, sharing each prompt's KV cache."""
    import torch

    n_b, n_o = len(prompts), len(options)
    width, opt_width = max(map(len, prompts)), max(map(len, options))
    ids = torch.full((n_b, width), pad, dtype=torch.long)
    mask = torch.zeros((n_b, width), dtype=torch.long)
    for b, p in enumerate(prompts):  # left-padded
        ids[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0), use_cache=True)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each option's first token
    cache = out.past_key_values
    cache.batch_repeat_interleave(n_o)
    opt = torch.full((n_b * n_o, opt_width), pad, dtype=torch.long)
    opt_mask = torch.zeros((n_b * n_o, opt_width), dtype=torch.long)
    for b in range(n_b):
        for j, o in enumerate(options):  # right-padded after the prompt
            opt[b * n_o + j, : len(o)] = torch.tensor(o)
            opt_mask[b * n_o + j, : len(o)] = 1
    lengths = torch.tensor([len(p) for p in prompts]).repeat_interleave(n_o)
    out = model(
        input_ids=opt,
        attention_mask=torch.cat([mask.repeat_interleave(n_o, 0), opt_mask], dim=1),
        position_ids=lengths[:, None] + torch.arange(opt_width)[None],
        cache=cache,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # row t predicts option token t + 1
    result = []
    for b in range(n_b):
        row = []
        for j, o in enumerate(options):
            r = b * n_o + j
            rest = logp[r, : len(o) - 1].gather(1, torch.tensor(o[1:])[:, None]).sum() if len(o) > 1 else 0.0
            row.append(float(first[b, o[0]]) + float(rest))
        result.append(row)
    return result


class ExpertsModel(Model):
    """The `experts` knowledge writer: returns each conversation's perception cue text (no LLM)."""

    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        self.perceiver = _Perceiver(spec, self.media, workspace)

    def info(self) -> dict:
        return {"experts": list(self.perceiver.experts)}

    def generate(self, batch: list[Conversation], gen: GenerationSpec) -> list[Generation]:
        out = []
        for conv in batch:
            cues, modalities = self.perceiver.cues(conv, use_transcript=True)
            lines = [c.text() for c in cues if c.results]
            notes = sorted({n for c in cues for n in c.notes})
            out.append(
                Generation(
                    text="; ".join(lines)
                    if lines
                    else "no perception cues (no video, audio or transcript in the prompt)",
                    modalities=tuple(m for m in ("T", "A", "V") if m in modalities),
                    meta={
                        "notes": notes,
                        "results": [c.results for c in cues],
                        "language": sample_facts(conv).get("language") or "en",
                    },
                )
            )
        return out
