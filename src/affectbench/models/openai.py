"""`openai`: any OpenAI-compatible chat server (vLLM serve, llama.cpp server, SGLang, hosted APIs).

Video and audio go as separate content parts (the audio of a video is extracted to 16 kHz mono
WAV and sent as its own part, since servers have silently dropped audio-in-video):
- video: {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,..."}} holding the
  decoded, budgeted frames re-encoded at `MediaSpec.fps` (video_source: "frames", default), or
  the original file's bytes ("file") or a file:// URL ("file_url"; server-side local files).
- audio: {"type": "input_audio", "input_audio": {"data": <base64 wav>, "format": "wav"}}
  (audio_format: "input_audio", default) or {"type": "audio_url", "audio_url": {"url": data:/file:}}
  (audio_format: "audio_url" / "audio_file_url").

Requests go through the official `openai` SDK (`OpenAI(...).chat.completions.create`): its retries
(408/409/429/5xx, timeouts and connection errors; exponential backoff from 0.5 s to 8 s, Retry-After
honoured), its timeouts and its typed errors, each turned into a ModelError that costs one sample.
Options: base_url (http://127.0.0.1:8000/v1), api_key_env (name of the env var holding the key; the
key itself is never stored; without it the placeholder "EMPTY" is sent, never $OPENAI_API_KEY),
concurrency (4), timeout (60 s per attempt), max_retries (4), seed (0; runs send each sample's own
seed), extra_body ({}: merged into each request, e.g. vLLM's `mm_processor_kwargs`), top_logprobs
(20, score mode). `backoff` is accepted for old experiment files and ignored (the SDK's schedule).
Modalities on a Generation are those sent (a server cannot report which reached the model);
`meta["sent"]` records what each media part carried: frames, their rate and size for video,
seconds and sample rate for audio; `meta["server_check"]` compares the server's `usage.prompt_tokens`
with what the family's processor makes of that (`models.server_check`; the family from
options.family, the model's config, or options.processor: a local folder with the processor files),
and a mismatch is noted. The prompt budgets of `models.budgets` apply when the family is known.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.errors import ModelError, require
from ..core.specs import GenerationSpec, MediaSpec, ModelSpec
from ..core.types import Generation
from ..media import encode_mp4, get_cache, wav_bytes
from . import _media, budgets, families, server_check, stops
from . import options as options_
from .base import Conversation, Model

# statuses the SDK retries (openai-python `_should_retry`: 408, 409, 429 and every 5xx)
RETRY_STATUS = frozenset({408, 409, 429, *range(500, 600)})
# keyword arguments of `client.chat.completions.create` this backend sends; any other key of a request
# body (options.extra_body: vLLM's mm_processor_kwargs, top_k, ...) goes through the SDK's `extra_body`
CREATE_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "temperature", "top_p", "seed", "logprobs", "top_logprobs", "stop", "n"}
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class OpenAIModel(Model):
    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        super().__init__(spec, media, workspace)
        o = dict(spec.options)
        if "api_key" in o:
            raise ModelError("openai: never put an API key in the run spec; set options.api_key_env to an env var name")
        self.opts = o
        self.base_url = str(o.get("base_url", "http://127.0.0.1:8000/v1")).rstrip("/")
        self.concurrency = families.concurrency(spec.name, o, self.media.modalities)  # the family's batch policy
        self.timeout = float(o.get("timeout", 60.0))
        self.max_retries = int(o.get("max_retries", 4))
        self.audio_format = o.get("audio_format", "input_audio")
        self.video_source = o.get("video_source", "frames")
        if self.audio_format not in ("input_audio", "audio_url", "audio_file_url"):
            raise ModelError(
                f"openai: audio_format {self.audio_format!r}: use input_audio, audio_url or audio_file_url"
            )
        if self.video_source not in ("frames", "file", "file_url"):
            raise ModelError(f"openai: video_source {self.video_source!r}: use frames, file or file_url")
        self._cache = _media.media_cache(workspace, o)
        self._client = None
        self._lock = threading.Lock()
        self._checker: tuple | None = None

    # ---- plumbing: the official `openai` SDK (retries, timeouts, typed errors) ---------------
    def _api_key(self) -> str:
        env = self.opts.get("api_key_env")
        if not env:
            # no key configured: a placeholder, never the user's OPENAI_API_KEY sent to an arbitrary server
            return "EMPTY"
        key = os.environ.get(env)
        if not key:
            raise ModelError(f"openai: the environment variable {env!r} (options.api_key_env) is not set")
        return key

    def _sdk(self):
        """One `openai.OpenAI` client per model, shared by the request threads (the SDK's client is
        thread-safe; its default pool holds far more connections than `concurrency`)."""
        with self._lock:
            if self._client is None:
                openai = require("openai", "openai", "the openai backend")
                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=self._api_key(), timeout=self.timeout, max_retries=self.max_retries
                )
            return self._client

    def post(self, body: dict) -> dict:
        """`chat.completions.create` through the SDK; the response as a plain dict (extra fields such as
        `reasoning_content` kept). The SDK retries 408/409/429/5xx, timeouts and connection errors
        `max_retries` times with exponential backoff (Retry-After honoured); every failure becomes a
        ModelError naming the URL, the HTTP status and the server's message."""
        openai = require("openai", "openai", "the openai backend")
        url = f"{self.base_url}/chat/completions"
        known = {k: v for k, v in body.items() if k in CREATE_FIELDS}
        extra = {k: v for k, v in body.items() if k not in CREATE_FIELDS}
        attempts = self.max_retries + 1
        try:
            resp = self._sdk().chat.completions.create(**known, extra_body=extra or None)
        except openai.APITimeoutError as e:
            raise ModelError(f"openai: {url} timed out after {self.timeout}s ({attempts} attempts)") from e
        except openai.APIConnectionError as e:
            raise ModelError(f"openai: {url} connection error after {attempts} attempts: {e.__cause__ or e}") from e
        except openai.APIStatusError as e:
            msg = _server_message(e)
            if e.status_code in RETRY_STATUS:
                raise ModelError(
                    f"openai: {url} failed after {attempts} attempts; last error: HTTP {e.status_code}: {msg}"
                ) from e
            raise ModelError(f"openai: {url} rejected the request (HTTP {e.status_code}): {msg}") from e
        except openai.APIError as e:  # e.g. a body that is not JSON
            raise ModelError(f"openai: {url} returned an unusable response: {e}") from e
        data = resp.model_dump() if hasattr(resp, "model_dump") else resp
        if not isinstance(data, dict):
            raise ModelError(f"openai: {url} returned invalid JSON: {str(data)[:200]}")
        return data

    # ---- request building -----------------------------------------------------------------
    def prepare(self, conversation: Conversation) -> Conversation:
        return _media.prepare_media(conversation, self.media, self._cache)

    def checker(self):
        """(token counter, tokenizer) of the served family (`models.server_check.checker`), built once."""
        with self._lock:
            if self._checker is None:
                try:
                    self._checker = server_check.checker(self.spec.name, self.opts)
                except (OSError, ValueError, ImportError) as e:
                    raise ModelError(f"openai: options.processor {self.opts.get('processor')!r}: {e}") from e
            return self._checker

    def _budgeted(self, conv: Conversation) -> tuple[Conversation, dict]:
        """The prompt budgets of `models.budgets` on a prepared conversation: the video budget when the family
        is known, the audio budget and the record of the decoder's max_seconds cut always."""
        return budgets.fit(conv, self.checker()[0], self.media)

    def _server_saw(self, conv: Conversation, gen: GenerationSpec, usage: dict, sent: dict) -> dict:
        counter, tok = self.checker()
        texts = [gen.system_prompt or ""] + [p.text or "" for m in conv for p in m.parts if p.kind == "text"]
        return server_check.check(usage.get("prompt_tokens"), sent, "\n".join(t for t in texts if t), counter, tok)

    def _audio_part(self, p) -> dict:
        clip = p.data
        if self.audio_format == "input_audio":
            return {
                "type": "input_audio",
                "input_audio": {"data": _b64(wav_bytes(clip.audio, clip.sample_rate)), "format": "wav"},
            }
        if self.audio_format == "audio_url":
            url = "data:audio/wav;base64," + _b64(wav_bytes(clip.audio, clip.sample_rate))
        else:
            # the audio already decoded for this part, written once as a WAV (no second decode)
            cache = self._cache or get_cache(Path(tempfile.gettempdir()) / "affectbench-media")
            url = cache.clip_wav(p.path, self.media, p.span, clip).resolve().as_uri()
        return {"type": "audio_url", "audio_url": {"url": url}}

    def _video_part(self, p) -> dict:
        if self.video_source == "file_url" and not p.span:
            url = Path(p.path).resolve().as_uri()
        elif self.video_source == "file" and not p.span:
            suffix = Path(p.path).suffix.lstrip(".").lower() or "mp4"
            url = f"data:video/{suffix};base64," + _b64(Path(p.path).read_bytes())
        else:  # frames, or a segment: the decoded, budgeted frames re-encoded
            url = "data:video/mp4;base64," + _b64(encode_mp4(p.data.frames, self._rate(p.data)))
        return {"type": "video_url", "video_url": {"url": url}}

    def _rate(self, clip) -> float:
        """Frames per second of the re-encoded video: frames sent / seconds they cover."""
        return len(clip.frames) / clip.duration if clip.duration > 0 else float(self.media.fps)

    def sent_record(self, conv: Conversation) -> dict[str, list[dict]]:
        """What each usable media part of a prepared conversation carries to the server, by kind:
        video {frames, fps, width, height, source} (source "frames": the decoded frames re-encoded;
        "file"/"file_url": the original file, whose frames the server samples itself, `frames` then
        being what this run decoded), audio {seconds, sample_rate}, image {width, height}."""
        out: dict[str, list[dict]] = {}
        for m in conv:
            for p in m.parts:
                if p.kind == "text" or not _media.usable(p):
                    continue
                clip = p.data
                if p.kind == "audio":
                    rec = {"seconds": round(len(clip.audio) / clip.sample_rate, 3), "sample_rate": clip.sample_rate}
                else:
                    h, w = (int(x) for x in clip.frames.shape[1:3])
                    rec = {"width": w, "height": h}
                    if p.kind == "video":
                        src = self.video_source if not p.span else "frames"
                        rec = {"frames": int(len(clip.frames)), "fps": round(self._rate(clip), 4), **rec, "source": src}
                out.setdefault(p.kind, []).append(rec)
        return out

    def build_messages(self, conv: Conversation, gen: GenerationSpec) -> tuple[list[dict], tuple[str, ...]]:
        """OpenAI chat messages for a prepared conversation, and the modalities they carry."""
        sent: set[str] = set()
        msgs: list[dict] = []
        if gen.system_prompt and not any(m.role == "system" for m in conv):
            msgs.append({"role": "system", "content": gen.system_prompt})
        for m in conv:
            content: list[dict] = []
            for p in m.parts:
                if p.kind == "text":
                    if p.text:
                        content.append({"type": "text", "text": p.text})
                        sent.add("T")
                elif _media.usable(p):
                    if p.kind == "audio":
                        content.append(self._audio_part(p))
                    elif p.kind == "video":
                        content.append(self._video_part(p))
                    else:
                        content.append({"type": "image_url", "image_url": {"url": _png_url(p.data.frames[0])}})
                    sent.add(_media.PART_MODALITY[p.kind])
            if m.role != "user" and all(c["type"] == "text" for c in content):
                msgs.append({"role": m.role, "content": "".join(c.get("text", "") for c in content)})
            else:
                msgs.append({"role": m.role, "content": content})
        return msgs, tuple(x for x in ("T", "A", "V") if x in sent)

    def build_request(self, conv: Conversation, gen: GenerationSpec) -> tuple[dict, tuple[str, ...]]:
        msgs, mods = self.build_messages(conv, gen)
        body: dict[str, Any] = {
            "model": self.spec.name,
            "messages": msgs,
            "max_tokens": gen.max_new_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "seed": int(self.opts.get("seed", 0)),
        }
        body.update(self.opts.get("extra_body") or {})
        return body, mods

    # ---- generate / score -----------------------------------------------------------------
    def _one(self, conv: Conversation, gen: GenerationSpec, seed: int | None = None) -> Generation:
        try:
            conv, cuts = self._budgeted(self.prepare(conv))
            body, mods = self.build_request(conv, gen)
            if seed is not None:
                body["seed"] = int(seed)
            t0 = time.perf_counter()
            data = self.post(body)
            choice = (data.get("choices") or [{}])[0]
            text, reasoning, field = answer_fields(choice.get("message") or {})
            text, cut = stops.cut_text_at_end(text)
            usage = data.get("usage") or {}
            notes = _media.part_notes(conv)
            meta: dict[str, Any] = {"latency_s": round(time.perf_counter() - t0, 4), "modalities_source": "sent"}
            meta["answer_field"] = field
            sent = self.sent_record(conv)
            meta.update(cuts)
            if sent:
                meta["sent"] = sent
                meta["server_check"] = saw = self._server_saw(conv, gen, usage, sent)
                if saw["verdict"] in ("more", "fewer"):
                    meta["server_mismatch"] = saw["verdict"]
                    notes.append(
                        f"server_check: {saw['why']} ({saw['prompt_tokens']} prompt tokens, expected {saw['expected']})"
                    )
            if cut:
                meta["cut_at_end_token"] = True
            if choice.get("finish_reason") is not None:
                meta["finish_reason_raw"] = choice["finish_reason"]
            if notes:
                meta["notes"] = notes
            return Generation(
                text=text.strip(),
                modalities=mods,
                n_input_tokens=usage.get("prompt_tokens"),
                n_output_tokens=usage.get("completion_tokens"),
                finish_reason="stop" if cut else stops.finish_reason(choice.get("finish_reason")),
                reasoning=reasoning,
                meta=meta,
            )
        except ModelError as e:
            return Generation(text="", error=str(e))

    accepts_seeds = True

    def generate(
        self, batch: list[Conversation], gen: GenerationSpec, seeds: list[int] | None = None
    ) -> list[Generation]:
        """One request per conversation; `seeds` (one per conversation) replace options.seed as each
        request's `seed` (servers that honour it then sample each answer independently of batching)."""
        seeds = list(seeds) if seeds is not None else [None] * len(batch)
        if len(batch) == 1 or self.concurrency == 1:
            return [self._one(c, gen, s) for c, s in zip(batch, seeds, strict=True)]
        with ThreadPoolExecutor(min(self.concurrency, len(batch))) as pool:
            return list(pool.map(lambda cs: self._one(cs[0], gen, cs[1]), zip(batch, seeds, strict=True)))

    def _score_one(self, conv: Conversation, options: list[str], gen: GenerationSpec) -> Generation:
        """First-token log-probs of each option from the server's top_logprobs (-inf when absent)."""
        try:
            conv, cuts = self._budgeted(self.prepare(conv))
            body, mods = self.build_request(conv, gen)
            body.update(
                max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=int(self.opts.get("top_logprobs", 20))
            )
            data = self.post(body)
            choice = (data.get("choices") or [{}])[0]
            content = ((choice.get("logprobs") or {}).get("content")) or []
            if not content or not content[0].get("top_logprobs"):
                raise ModelError(
                    f"openai: the server at {self.base_url} returned no logprobs, so it cannot score options; "
                    "use generation mode: generate"
                )
            scores, failure = first_token_scores(content[0]["top_logprobs"], options)
            meta: dict[str, Any] = {"score_method": "first-token top_logprobs", **cuts}
            sent = self.sent_record(conv)
            if sent:
                meta["sent"] = sent
                meta["server_check"] = self._server_saw(conv, gen, data.get("usage") or {}, sent)
            if failure:
                meta.update(unread_reason="scoring_failed", scoring_error=failure)
                return Generation(text="", modalities=mods, meta=meta)
            return options_.score_generation(scores, gen.decision, modalities=mods, meta=meta)
        except ModelError as e:
            return Generation(text="", error=str(e))

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(batch)))) as pool:
            return list(pool.map(lambda c: self._score_one(c, options, gen), batch))

    def info(self) -> dict:
        info = {"base_url": self.base_url, "audio_format": self.audio_format, "video_source": self.video_source}
        info["concurrency"] = self.concurrency  # 1 for families whose answers depend on batch-mates
        try:
            import openai

            info["openai"] = openai.__version__
        except ImportError:
            pass
        return info

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def first_token_scores(top: list[dict], options: list[str]) -> tuple[dict[str, float], str | None]:
    """Per-option first-token log-probs from a server's top_logprobs, and why they cannot be used.

    A top token matches an option when its text (stripped, case-folded) is a prefix of the option; an
    option's score is its best matching token's log-prob, -inf when none of the top tokens matches.
    Refused (second value set; scores then mean nothing): no option matched any top token, or two
    options take their score from the same token (they share a first token, so the server's answer
    cannot tell them apart: "-3.0" and "-2.0" both start with "-").
    """
    scores: dict[str, float] = {}
    source: dict[str, str] = {}
    for opt in options:
        key = opt.strip().lower()
        best, src = float("-inf"), None
        for t in top:
            tok = (t.get("token") or "").strip().lower()
            if tok and key.startswith(tok) and float(t["logprob"]) > best:
                best, src = float(t["logprob"]), tok
        scores[opt] = best
        if src is not None:
            source[opt] = src
    if not source:
        return scores, f"none of the options {options} matches the server's top {len(top)} first tokens"
    by_token: dict[str, list[str]] = {}
    for opt, tok in source.items():
        by_token.setdefault(tok, []).append(opt)
    shared = {t: o for t, o in by_token.items() if len(o) > 1}
    if shared:
        tok, opts = next(iter(shared.items()))
        return scores, f"options {opts} share the first token {tok!r}; first-token scores cannot tell them apart"
    return scores, None


REASONING_FIELDS = ("reasoning_content", "reasoning")


def answer_fields(message: dict) -> tuple[str, str | None, str | None]:
    """(answer text, reasoning text, the field the answer came from) of a chat-completion message.

    The answer is `content`; a separate reasoning text (`reasoning_content`, vLLM's reasoning parsers
    and DeepSeek; `reasoning`, other servers) is kept apart. When `content` is null or empty and only
    a reasoning field holds text (a reasoning parser that swallowed the whole answer), that text is the
    answer and its field is named, so parsing and reports can tell; the field is None when nothing came.
    """
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning, rfield = None, None
    for f in REASONING_FIELDS:
        if isinstance(message.get(f), str) and message[f].strip():
            reasoning, rfield = message[f], f
            break
    if content and content.strip():
        return content, reasoning, "content"
    if reasoning is not None:
        return reasoning, reasoning, rfield
    return "", None, None


def _png_url(img) -> str:
    import io

    image = require("PIL.Image", "hf", "image encoding")
    buf = io.BytesIO()
    image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + _b64(buf.getvalue())


def _server_message(e) -> str:
    """The server's error message of an SDK `APIStatusError` (its JSON `error.message`, else the text)."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:500]
        return str(err)[:500]
    if body is not None:
        return str(body)[:500]
    try:
        return e.response.text[:500]
    except Exception:
        return str(e)[:500]
