"""What an OpenAI-compatible server saw: its `usage.prompt_tokens` against the tokens the family's
processor makes of what was sent (the frames, frame size and audio seconds `OpenAIModel.sent_record`
keeps), per sample.

A server may re-sample a sent video to its own frame count — vLLM's OpenAI server re-samples
`video_url` to 32 frames unless started with `--media-io-kwargs '{"video": {"num_frames": -1}}'`
(Qwen3-VL issue #1517, PR #1644) — or drop a part it does not take (audio-in-video). Both show in the
prompt's token count. The expected count is the media tokens (`models.tokens`, the processor's own
defaults, as a server applies them) plus the text: counted by the tokenizer when `options.processor`
names a local folder with the processor files (±`TEMPLATE_SLACK` tokens for the chat template), else
bounded by the text's UTF-8 bytes (no tokenizer gives more tokens than bytes) + `TEMPLATE_SLACK`.

Verdicts: "ok"; "more" (the server counted more media tokens than sent: re-sampled or enlarged);
"fewer" (fewer than the media sent alone: a part dropped or shrunk); "unchecked" (a video sent as the
original file, whose frames the server samples itself, or no counter for the family).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ModelError
from . import families, sizing, tokens

TEMPLATE_SLACK = 64  # tokens a chat template may add around the messages (roles, turn and media markers)

VERDICT_TEXT = {
    "more": "the server counted more prompt tokens than the media sent can make: it re-sampled or enlarged the "
    'media (vLLM: start it with --media-io-kwargs \'{"video": {"num_frames": -1}}\')',
    "fewer": "the server counted fewer prompt tokens than the media sent alone: it dropped or shrank a part",
}


def checker(model_name: str, options: dict[str, Any]) -> tuple[tokens.Counter | None, Any]:
    """(media token counter, tokenizer or None) for a served model: `options.family` (a family key) or the
    family of the model's config (a local folder or a packaged config); `options.processor`: a local folder
    whose processor files (no weights) give exact settings and the tokenizer."""
    key = options.get("family")
    if key is None:
        found = sizing.find_config(model_name) if model_name else None
        key = families.family_of(sizing.runnable_config(found[0])).key if found else None
    folder = options.get("processor")
    if folder:
        from transformers import AutoProcessor

        proc = AutoProcessor.from_pretrained(str(folder))
        if key is None:
            key = families.family_of(families.local_config(str(folder))).key
        try:
            return tokens.counter_of(proc, key, cap_pixels_per_frame=False, source=str(folder)), getattr(
                proc, "tokenizer", None
            )
        except ModelError:
            return None, getattr(proc, "tokenizer", None)
    if key is None or key == families.GENERIC.key:
        return None, None
    try:
        return tokens.released_counter(key), None
    except (ModelError, ImportError):
        return None, None


def expected_media_tokens(counter: tokens.Counter, sent: dict[str, list[dict]]) -> int | None:
    """Media tokens of what was sent (`sent_record`), or None when a video went as the original file."""
    n = 0
    for v in sent.get("video", []):
        if v.get("source", "frames") != "frames":
            return None
        n += counter.video(int(v["frames"]), int(v["height"]), int(v["width"]))
    for im in sent.get("image", []):
        n += counter.image(int(im["height"]), int(im["width"]))
    for a in sent.get("audio", []):
        kept = counter.audio_seconds_kept(float(a["seconds"]))
        n += counter.audio_clip(int(round(kept * counter.sample_rate)))
    return n


def check(prompt_tokens: int | None, sent: dict, text: str, counter, tokenizer=None) -> dict[str, Any]:
    """The record for `meta["server_check"]`: prompt tokens reported, the expected range, the verdict."""
    if counter is None or prompt_tokens is None:
        return {"verdict": "unchecked", "why": "no token counter for this family" if counter is None else "no usage"}
    media = expected_media_tokens(counter, sent)
    if media is None:
        return {"verdict": "unchecked", "why": "video sent as the original file: the server samples its frames"}
    if tokenizer is not None:
        n_text = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        lo, hi = media + n_text, media + n_text + TEMPLATE_SLACK
    else:
        lo, hi = media, media + len(text.encode("utf-8")) + TEMPLATE_SLACK
    verdict = "ok" if lo <= prompt_tokens <= hi else ("more" if prompt_tokens > hi else "fewer")
    out = {"verdict": verdict, "prompt_tokens": int(prompt_tokens), "expected": [lo, hi], "media_tokens": media}
    if verdict in VERDICT_TEXT:
        out["why"] = VERDICT_TEXT[verdict]
    return out
