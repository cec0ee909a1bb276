"""Chat-template messages from a prepared conversation: the shape the hf and vllm backends both render.

Each text part becomes a text entry, each usable media part of a kind the processor accepts a
placeholder entry ({"type": kind}); the media parts themselves are returned in order so that each
backend hands their decoded arrays to its engine in its own way.

Thinking models: a chat template that ends its generation prompt with an opening reasoning tag
(Qwen3's and DeepSeek-R1's templates write "<think>\\n" after "<|im_start|>assistant") makes the model
start inside the block, so its output carries only the closing tag. `opens_reasoning` reads that
from the rendered prompt (recorded per answer as meta["reasoning_opened"]); `split_answer` keeps
the text after the last closing tag as the answer and the rest as the reasoning — and, when the
prompt opened the block and the output never closed it, leaves no answer at all (the reasoning
ran out: unread, never a label read from the reasoning). Score mode closes an opened block first
(`close_reasoning`, recorded as meta["reasoning_closed"]): options are answers, never reasoning.
"""

from __future__ import annotations

import re

from ..core.specs import GenerationSpec
from ..core.types import Part
from . import _media
from .base import Conversation


def processor_kinds(proc) -> set[str]:
    """Which media part kinds an HF processor can take, found from its sub-processors' classes
    (`families.capabilities`: Phi-4's audio sub-processor is `audio_processor`, not `feature_extractor`)."""
    from .families import capabilities

    return set(capabilities(proc))


def placeholder_ids(proc) -> dict[str, set[int]]:
    """{"A": ids, "V": ids}: token ids whose presence in input_ids proves that a modality reached the model
    (the processor's or tokenizer's audio_token / video_token / image_token)."""
    tok = getattr(proc, "tokenizer", proc)
    ids: dict[str, set[int]] = {"A": set(), "V": set()}
    for attr, mod in (("audio_token", "A"), ("video_token", "V"), ("image_token", "V")):
        token = getattr(proc, attr, None) or getattr(tok, attr, None)
        if token:
            tid = tok.convert_tokens_to_ids(token)
            if tid is not None and tid != tok.unk_token_id:
                ids[mod].add(int(tid))
    return ids


def chat_messages(conv: Conversation, gen: GenerationSpec, accepts: set[str]) -> tuple[list[dict], list[Part]]:
    """The chat-template messages (system prompt first unless the conversation has one) and the media
    parts they hold placeholders for, in order."""
    msgs: list[dict] = []
    media: list[Part] = []
    if gen.system_prompt and not any(m.role == "system" for m in conv):
        msgs.append({"role": "system", "content": [{"type": "text", "text": gen.system_prompt}]})
    for m in conv:
        content = []
        for p in m.parts:
            if p.kind == "text":
                if p.text:
                    content.append({"type": "text", "text": p.text})
            elif p.kind in accepts and _media.usable(p):
                content.append({"type": p.kind})
                media.append(p)
        msgs.append({"role": m.role, "content": content})
    return msgs, media


def sent_modalities(conv: Conversation, media: list[Part]) -> tuple[str, ...]:
    """The modalities ("T", "A", "V", in that order) sent: the conversation's non-empty text parts
    (not the system prompt) and the media parts `chat_messages` kept."""
    sent = {_media.PART_MODALITY[p.kind] for p in media}
    if any(p.kind == "text" and p.text for m in conv for p in m.parts):
        sent.add("T")
    return tuple(x for x in ("T", "A", "V") if x in sent)


_OPENS = re.compile(r"(?:<think>|<thinking>|<reasoning>|◁think▷)\s*$", re.I)
_CLOSE = re.compile(r"</think>|</thinking>|</reasoning>|◁/think▷", re.I)
_OPEN = re.compile(r"^\s*(?:<think>|<thinking>|<reasoning>|◁think▷)", re.I)


def opens_reasoning(prompt: str) -> bool:
    """Whether a rendered chat prompt ends inside an opened reasoning block ("…assistant\\n<think>\\n")."""
    return bool(_OPENS.search(prompt or ""))


_CLOSING = {"<think>": "</think>", "<thinking>": "</thinking>", "<reasoning>": "</reasoning>", "◁think▷": "◁/think▷"}


def close_reasoning(prompt: str) -> tuple[str, bool]:
    """(prompt, closed): a rendered prompt that ends inside an opened reasoning block, with the block
    closed empty — what the family's own non-thinking template writes. Qwen3's chat template with
    enable_thinking=false ends its generation prompt "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    (Qwen/Qwen3-8B tokenizer_config.json chat_template); its thinking-only variants
    (Qwen3-*-Thinking-2507, DeepSeek-R1) end in "<think>\n", which becomes exactly that. Score mode
    scores options after it, so they are the answer and not the start of the reasoning; a prompt that
    opens no block comes back unchanged (closed False)."""
    m = _OPENS.search(prompt or "")
    if not m:
        return prompt, False
    tag = m.group(0).strip()
    return prompt[: m.start()] + tag + "\n\n" + _CLOSING[tag.lower()] + "\n\n", True


def split_answer(text: str, opened: bool) -> tuple[str, str | None]:
    """(answer, reasoning) of a decoded output. The text after the last closing reasoning tag is the
    answer, the text before it the reasoning (its opening tag dropped); with no closing tag, an
    output whose prompt `opened` the block is all reasoning (answer ""), any other is all answer."""
    closes = list(_CLOSE.finditer(text))
    if closes:
        head = _OPEN.sub("", text[: closes[-1].start()], count=1)
        return text[closes[-1].end() :].strip(), head.strip()
    if opened:
        return "", _OPEN.sub("", text, count=1).strip()
    return text, None
