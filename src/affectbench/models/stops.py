"""End tokens: where a model's answer ends, for every backend that sees token ids or raw text.

A checkpoint defines its end tokens in three places: `generation_config.eos_token_id` (an int or a
list, e.g. Qwen2.5's [<|im_end|>, <|endoftext|>]), the tokenizer (`eos_token`, and the pad token,
which a left-padded batch writes after a finished row), and its chat template (the token that closes
an assistant turn: <|im_end|>, <end_of_turn>, <|eot_id|>). A model that emits any of them has
finished its turn; what follows is an invented continuation (new `user`/`assistant` turns) and is cut.
`CONVENTIONAL_ENDS` names the document/turn ends of the common families, used where present in
the vocabulary as special tokens (and by the `openai` backend, which sees text only).
"""

from __future__ import annotations

from typing import Any

# Document and turn ends of the common chat families (Qwen/ChatML, Gemma, Llama 3, Phi).
CONVENTIONAL_ENDS = ("<|endoftext|>", "<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end_of_text|>", "<|end|>")

_MARK = "\u2063AFFECTBENCH_END\u2063"


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple, set)):
        return {int(v) for v in value if v is not None}
    return {int(value)}


def template_end_token(tok: Any) -> str | None:
    """The token the chat template writes right after an assistant turn's content, or None.

    Rendered from a one-turn exchange with a marker as the assistant's content; None when the
    tokenizer has no chat template or the text after the marker does not start with a special token.
    """
    if not getattr(tok, "chat_template", None):
        return None
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _MARK}]
    try:
        text = tok.apply_chat_template(msgs, tokenize=False)
    except Exception:  # templates that reject plain-string content or this shape: no end token known from it
        return None
    if _MARK not in text:
        return None
    tail = text.split(_MARK, 1)[1]
    ids = tok(tail, add_special_tokens=False)["input_ids"] if tail else []
    if not ids:
        return None
    first = tok.convert_ids_to_tokens(int(ids[0]))
    special = set(getattr(tok, "all_special_tokens", ())) | set(getattr(tok, "added_tokens_encoder", {}) or {})
    return first if first in special else None


def end_token_ids(tok: Any, generation_config: Any = None) -> list[int]:
    """Sorted ids of every end token of a checkpoint: generation_config.eos_token_id (int or list), the
    tokenizer's eos and pad tokens, the chat template's end-of-turn token and the `CONVENTIONAL_ENDS`
    that the vocabulary holds as special tokens. `tok`: a transformers tokenizer (or a processor
    holding one as `.tokenizer`)."""
    tok = getattr(tok, "tokenizer", tok)
    ids = _ids(getattr(generation_config, "eos_token_id", None))
    ids |= _ids(getattr(tok, "eos_token_id", None)) | _ids(getattr(tok, "pad_token_id", None))
    special = set(getattr(tok, "all_special_tokens", ())) | set(getattr(tok, "added_tokens_encoder", {}) or {})
    names = [t for t in CONVENTIONAL_ENDS if t in special]
    end = template_end_token(tok)
    if end:
        names.append(end)
    unk = getattr(tok, "unk_token_id", None)
    for name in names:
        tid = tok.convert_tokens_to_ids(name)
        if tid is not None and tid != unk:
            ids.add(int(tid))
    return sorted(ids)


def cut_at_end(ids: list[int], ends: set[int] | list[int], max_new_tokens: int | None = None) -> tuple[int, str | None]:
    """(n, finish_reason) for a generated row: `n` tokens are the answer's, up to and including the first
    end token (0-based cut; tokens after it are an invented continuation or padding). finish_reason is
    "stop" when an end token was found, "length" when the row holds `max_new_tokens` tokens without one,
    None otherwise (stopped by something else)."""
    ends = set(ends)
    for i, t in enumerate(ids):
        if t in ends:
            return i + 1, "stop"
    if max_new_tokens is not None and len(ids) >= max_new_tokens:
        return len(ids), "length"
    return len(ids), None


def cut_text_at_end(text: str, ends: tuple[str, ...] = CONVENTIONAL_ENDS) -> tuple[str, bool]:
    """`text` up to the first literal end token (servers that keep special tokens in their output), and
    whether one was found."""
    cut = min((i for i in (text.find(e) for e in ends) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


FINISH_REASONS = {
    "stop": "stop",
    "eos": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
}


def finish_reason(raw: str | None) -> str | None:
    """A server's or engine's finish reason mapped to "stop" | "length" | None (abort, content filter, unknown)."""
    return FINISH_REASONS.get(str(raw).lower()) if raw else None
