"""The openai backend (the official `openai` SDK) against a real HTTP server process on 127.0.0.1: the
test double tests/models/_openai_server.py (a tiny random Qwen2 behind an OpenAI-compatible API)."""

import base64
import io
import json
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import pytest

from affectbench.core.errors import ModelError
from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.media import decode_count
from affectbench.models.openai import OpenAIModel
from tests._clips import make_clip

ROOT = Path(__file__).resolve().parents[2]
GEN = GenerationSpec(max_new_tokens=4)


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.models._openai_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"test server did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def model(server, name="tiny", workspace=None, **opts):
    return OpenAIModel(
        ModelSpec(backend="openai", name=name, options={"base_url": server, **opts}), MediaSpec(fps=2), workspace
    )


def requests(server):
    with urllib.request.urlopen(server.replace("/v1", "/_requests")) as r:
        return json.loads(r.read())["requests"]


def post_json(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def text_conv(text):
    return [Message(role="user", parts=[Part.of_text(text)])]


def test_text_path(server):
    gens = model(server, concurrency=2).generate([text_conv("Hello?"), text_conv("How does the speaker feel?")], GEN)
    assert all(g.error is None for g in gens), [g.error for g in gens]
    assert all(isinstance(g.text, str) and g.modalities == ("T",) for g in gens)
    assert gens[0].n_input_tokens < gens[1].n_input_tokens
    assert all(1 <= g.n_output_tokens <= 4 for g in gens)


def test_content_parts_and_api_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test-123")
    clip = make_clip(tmp_path / "c.mp4", 2.0)
    m = model(server, name="av-capture", workspace=tmp_path, api_key_env="TEST_KEY")
    assert "sk-test" not in str(m.spec.model_dump())
    conv = [
        Message(
            role="user",
            parts=[Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip)), Part.of_text("Emotion?")],
        )
    ]
    (g,) = m.generate([conv], GenerationSpec(max_new_tokens=2, system_prompt="Be brief."))
    assert g.error is None and g.modalities == ("T", "A", "V")
    (req,) = [r for r in requests(server) if r["body"]["model"] == "av-capture"]
    assert req["auth"] == "Bearer sk-test-123"
    assert req["agent"].startswith("OpenAI/Python")  # sent by the official SDK
    assert g.meta["sent"]["audio"] == [{"seconds": 2.0, "sample_rate": 16000}]
    (v,) = g.meta["sent"]["video"]
    assert (v["frames"], v["fps"], v["source"]) == (4, 2.0, "frames") and v["width"] > 0 and v["height"] > 0
    body = req["body"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    video, audio, text = body["messages"][1]["content"]
    assert video["type"] == "video_url" and video["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert audio["type"] == "input_audio" and audio["input_audio"]["format"] == "wav"
    assert text == {"type": "text", "text": "Emotion?"}
    assert body["max_tokens"] == 2 and body["temperature"] == 0.0
    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and abs(w.getnframes() - 32000) < 400
    mp4 = tmp_path / "sent.mp4"
    mp4.write_bytes(base64.b64decode(video["video_url"]["url"].split(",", 1)[1]))
    from affectbench.media import decode

    assert decode(mp4, MediaSpec(fps=2)).frames.shape[0] == 4  # the budgeted frames, re-encoded


def test_audio_url_and_file_options(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 1.0)
    m = OpenAIModel(
        ModelSpec(backend="openai", name="x", options={"audio_format": "audio_file_url", "video_source": "file_url"}),
        MediaSpec(),
        tmp_path,
    )
    conv = m.prepare(
        [Message(role="user", parts=[Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip))])]
    )
    decodes = decode_count()
    body, mods = m.build_request(conv, GEN)
    assert decode_count() == decodes  # the WAV is written from the audio prepare decoded, not decoded again
    video, audio = body["messages"][0]["content"]
    assert video["video_url"]["url"] == clip.resolve().as_uri()
    assert audio["type"] == "audio_url" and audio["audio_url"]["url"].startswith("file://")
    wav_path = Path(audio["audio_url"]["url"][7:])
    assert wav_path.is_file() and mods == ("A", "V")
    with wave.open(str(wav_path)) as w:
        assert w.getframerate() == 16000 and w.getnframes() == len(conv[0].parts[1].data.audio)


def test_missing_audio_not_sent(tmp_path):
    clip = make_clip(tmp_path / "mute.mp4", 1.0, audio=False)
    m = OpenAIModel(ModelSpec(backend="openai", name="x"), MediaSpec(), tmp_path)
    conv = m.prepare(
        [Message(role="user", parts=[Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip))])]
    )
    body, mods = m.build_request(conv, GEN)
    assert [c["type"] for c in body["messages"][0]["content"]] == ["video_url"] and mods == ("V",)


def test_retries_on_503_then_success(server):
    (g,) = model(server, name="flaky-2", max_retries=3).generate([text_conv("hi")], GEN)
    assert g.error is None
    assert len([r for r in requests(server) if r["body"]["model"] == "flaky-2"]) == 3


def test_retries_exhausted(server):
    (g,) = model(server, name="flaky-9", max_retries=1).generate([text_conv("hi")], GEN)
    assert g.error and "503" in g.error and "2 attempts" in g.error


def test_400_is_a_clear_error(server):
    with pytest.raises(ModelError, match="HTTP 400.*does not accept video_url"):
        model(server, name="bad").post({"model": "bad", "messages": []})
    (g,) = model(server, name="bad").generate([text_conv("hi")], GEN)
    assert "does not accept video_url" in g.error


def test_timeout_does_not_hang(server):
    t0 = time.perf_counter()
    (g,) = model(server, name="slow", timeout=0.5, max_retries=0).generate([text_conv("hi")], GEN)
    assert "timed out" in g.error and time.perf_counter() - t0 < 2.5


def test_connection_refused_is_model_error():
    m = OpenAIModel(
        ModelSpec(backend="openai", name="x", options={"base_url": "http://127.0.0.1:9/v1", "max_retries": 0})
    )
    (g,) = m.generate([text_conv("hi")], GEN)
    assert "connection error" in g.error


def test_api_key_rules(monkeypatch):
    with pytest.raises(ModelError, match="api_key_env"):
        OpenAIModel(ModelSpec(backend="openai", name="x", options={"api_key": "sk-1"}))
    monkeypatch.delenv("NOPE_KEY", raising=False)
    m = OpenAIModel(ModelSpec(backend="openai", name="x", options={"api_key_env": "NOPE_KEY"}))
    assert "NOPE_KEY" in m.generate([text_conv("hi")], GEN)[0].error


def top_tokens(server, m):
    """The server's top first tokens (stripped, non-empty, distinct) and their log-probs for the test prompt."""
    body, _ = m.build_request(m.prepare(text_conv("Sentiment?")), GEN)
    body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)
    top = post_json(server + "/chat/completions", body)["choices"][0]["logprobs"]["content"][0]
    out = {}
    for t in top["top_logprobs"]:
        tok = t["token"].strip().lower()
        if tok and tok not in out and not any(tok.startswith(o) or o.startswith(tok) for o in out):
            out[tok] = t["logprob"]
    return out


def test_score_with_logprobs(server):
    m = model(server)
    (a, la), (b, lb) = list(top_tokens(server, m).items())[:2]
    options = [a + "\u2603", b + "\u2603"]  # options whose first tokens are the server's top two
    (g,) = m.score([text_conv("Sentiment?")], options, GEN)
    assert g.error is None and g.scores == pytest.approx({options[0]: la, options[1]: lb})
    assert g.text == (options[0] if la > lb else options[1])
    (g,) = model(server, name="nologprobs").score([text_conv("Sentiment?")], ["positive"], GEN)
    assert "no logprobs" in g.error


def test_finish_reason_from_the_server(server):
    (short,) = model(server).generate([text_conv("Hello?")], GenerationSpec(max_new_tokens=2))
    assert (
        short.finish_reason == "length" and short.n_output_tokens == 2 and short.meta["finish_reason_raw"] == "length"
    )


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_null_content_answer_in_a_reasoning_field(server, field):
    (plain,) = model(server).generate([text_conv("Hello?")], GEN)
    (g,) = model(server, name=f"{field}- positive").generate([text_conv("Hello?")], GEN)
    assert g.error is None
    assert g.reasoning == plain.text + " positive"  # kept verbatim
    assert g.text == (plain.text + " positive").strip()  # the only answer text there is
    assert g.meta["answer_field"] == field


def test_content_and_reasoning_kept_apart(server):
    (plain,) = model(server).generate([text_conv("Hello?")], GEN)
    (g,) = model(server, name="think-I weigh the cues").generate([text_conv("Hello?")], GEN)
    assert g.text == plain.text and g.reasoning == "I weigh the cues" and g.meta["answer_field"] == "content"


def test_literal_end_token_cuts_the_invented_turn(server):
    (plain,) = model(server).generate([text_conv("Hello?")], GEN)
    (g,) = model(server, name="runon").generate([text_conv("Hello?")], GEN)
    assert "joy" not in g.text.replace(plain.text, "") and "user" not in g.text.replace(plain.text, "")
    assert g.finish_reason == "stop" and g.meta["cut_at_end_token"]


def test_score_refuses_unmatched_and_shared_first_tokens(server):
    m = model(server)
    (g,) = m.score([text_conv("Sentiment?")], ["\u2603zzz", "\u2603yyy"], GEN)  # no top token starts these
    assert g.error is None and g.text == "" and g.meta["unread_reason"] == "scoring_failed"
    body, _ = m.build_request(m.prepare(text_conv("Sentiment?")), GEN)
    body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)
    top = post_json(server + "/chat/completions", body)["choices"][0]["logprobs"]["content"][0]
    first = next(t["token"].strip() for t in top["top_logprobs"] if t["token"].strip())
    (g,) = m.score([text_conv("Sentiment?")], [first + "\u2603a", first + "\u2603b"], GEN)
    assert g.text == "" and "share the first token" in g.meta["scoring_error"]


def test_per_sample_seeds_reach_the_requests(server):
    from affectbench.core.types import Sample
    from affectbench.engine.execution import Call, Task, call_model
    from affectbench.models.base import sample_seed

    m = model(server, name="seeded", concurrency=2)
    tasks = [Task(Sample(id=f"clip{i}", transcript="", target=None), text_conv(f"Seed me {i}")) for i in range(3)]
    call_model(m, tasks, Call(GenerationSpec(max_new_tokens=2, temperature=1.0), seed=11))
    sent = {
        r["body"]["messages"][0]["content"][0]["text"]: r["body"]["seed"]
        for r in requests(server)
        if r["body"]["model"] == "seeded"
    }
    assert sent == {f"Seed me {i}": sample_seed(11, f"clip{i}") for i in range(3)}


def test_a_400_on_one_sample_costs_that_sample_only(server):
    from affectbench.core.types import Sample
    from affectbench.engine.execution import Call, Task, call_model

    m = model(server, name="mixed", concurrency=3)
    texts = ["fine one", "REJECT-ME please", "fine two"]
    tasks = [Task(Sample(id=f"s{i}", transcript="", target=None), text_conv(t)) for i, t in enumerate(texts)]
    call_model(m, tasks, Call(GenerationSpec(max_new_tokens=2)))
    assert [t.error is None for t in tasks] == [True, False, True]
    assert "HTTP 400" in tasks[1].error and "longer than the model's context" in tasks[1].error
    assert len([r for r in requests(server) if r["body"]["model"] == "mixed"]) == 3  # a 400 is never retried


def test_extra_body_reaches_the_request(server):
    m = model(server, name="extra", extra_body={"mm_processor_kwargs": {"fps": 2}, "top_k": 1})
    (g,) = m.generate([text_conv("hi")], GEN)
    assert g.error is None
    (req,) = [r for r in requests(server) if r["body"]["model"] == "extra"]
    assert req["body"]["mm_processor_kwargs"] == {"fps": 2} and req["body"]["top_k"] == 1
    assert req["auth"] == "Bearer EMPTY"  # no key configured: a placeholder, never $OPENAI_API_KEY


@pytest.mark.parametrize(
    "name, verdict", [("media-asis", "ok"), ("media-resample32", "more"), ("media-noaudio", "fewer")]
)
def test_what_the_server_saw_is_checked_per_sample(server, tmp_path, name, verdict):
    """A server that re-samples a 6-frame clip to 32 frames (vLLM's default for video_url) or drops the
    audio part is flagged per sample; one that counts what was sent passes."""
    clip = make_clip(tmp_path / "c.mp4", 3.0, size=(64, 48))
    m = model(server, name=name, workspace=tmp_path, family="qwen2_5_omni")
    conv = [
        Message(
            role="user",
            parts=[Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip)), Part.of_text("Emotion?")],
        )
    ]
    (g,) = m.generate([conv], GEN)
    assert g.error is None and g.meta["sent"]["video"][0]["frames"] == 6
    check = g.meta["server_check"]
    assert check["verdict"] == verdict, check
    assert (g.meta.get("server_mismatch") == verdict) == (verdict != "ok")
    if verdict != "ok":
        assert any("server_check" in n for n in g.meta["notes"])


def test_server_check_is_unchecked_without_a_family(server, tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 1.0)
    m = model(server, name="media-resample32", workspace=tmp_path)
    conv = [Message(role="user", parts=[Part(kind="video", path=str(clip)), Part.of_text("Emotion?")])]
    (g,) = m.generate([conv], GEN)
    assert g.meta["server_check"]["verdict"] == "unchecked" and "server_mismatch" not in g.meta


def test_video_budget_applies_to_what_is_sent(server, tmp_path):
    """The prompt budget (models.budgets) holds for the openai backend too: fewer frames go to the server."""
    clip = make_clip(tmp_path / "c.mp4", 3.0, size=(64, 48))
    m = OpenAIModel(
        ModelSpec(backend="openai", name="media-asis", options={"base_url": server, "family": "qwen2_5_omni"}),
        MediaSpec(fps=2, max_video_tokens=300),
        tmp_path,
    )
    conv = [Message(role="user", parts=[Part(kind="video", path=str(clip)), Part.of_text("Emotion?")])]
    (g,) = m.generate([conv], GEN)
    (cut,) = g.meta["video_truncated"]
    assert cut["frames"] == 6 and cut["frames_sent"] == g.meta["sent"]["video"][0]["frames"] < 6
    assert cut["tokens_sent"] <= 300 < cut["tokens"]
    assert g.meta["server_check"]["verdict"] == "ok"  # the server counted the thinned frames it got


def test_family_batch_policy_sets_the_concurrency(tmp_path):
    """A family whose answers depend on batch-mates gets one request in flight (a server batches concurrent
    requests); asking for more is refused; other families keep the asked concurrency. Recorded in info()."""
    import json

    from affectbench.core.errors import ModelError

    phi = tmp_path / "phi"
    phi.mkdir()
    (phi / "config.json").write_text(json.dumps({"model_type": "phi4_multimodal"}))
    model = OpenAIModel(ModelSpec(backend="openai", name=str(phi)))
    assert model.concurrency == 1 and model.info()["concurrency"] == 1
    with pytest.raises(ModelError, match="one request at a time"):
        OpenAIModel(ModelSpec(backend="openai", name=str(phi), options={"concurrency": 4}))
    served = ModelSpec(backend="openai", name="served-id", options={"family": "phi4_multimodal"})
    assert OpenAIModel(served).concurrency == 1  # a served model id: the family named in the options
    assert OpenAIModel(ModelSpec(backend="openai", name="served-id", options={"concurrency": 3})).concurrency == 3


def test_the_decoders_max_seconds_cut_is_audio_truncated(server, tmp_path):
    """A decode stopped at `media.max_seconds` is counted as `audio_truncated` here too, with or without a
    known family (the audio goes to the server as decoded)."""
    clip = make_clip(tmp_path / "long.mp4", 4.0, size=(32, 32))
    m = OpenAIModel(
        ModelSpec(backend="openai", name="media-asis", options={"base_url": server}),
        MediaSpec(max_seconds=1.5),
        tmp_path,
    )
    conv = [Message(role="user", parts=[Part(kind="audio", path=str(clip)), Part.of_text("Emotion?")])]
    (g,) = m.generate([conv], GEN)
    assert g.error is None
    (cut,) = g.meta["audio_truncated"]
    assert cut["by"] == "max_seconds" and cut["seconds"] == pytest.approx(4.0, abs=0.1)
    assert cut["seconds_sent"] == pytest.approx(1.5, abs=0.05) == g.meta["sent"]["audio"][0]["seconds"]
