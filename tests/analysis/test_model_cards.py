import pytest

from affectbench.analysis.model_cards import builtin_cards, card_for, load_cards
from affectbench.core.errors import ConfigError
from affectbench.core.specs import ModelSpec


def test_builtin_cards_cover_the_benchmark_models():
    ids = {c.id for c in builtin_cards()}
    for want in [
        "Qwen2.5-Omni-3B",
        "Qwen2.5-Omni-7B",
        "Qwen3-Omni-30B-A3B",
        "MiniCPM-o-2.6",
        "Baichuan-Omni-1.5",
        "Ola-7B",
        "VideoLLaMA2.1-7B-AV",
        "HumanOmni-7B",
        "Qwen2-Audio-7B",
        "Qwen2.5-VL-7B",
        "Cascade-Gemma3-270M",
    ]:
        assert want in ids
    cards = {c.id: c for c in builtin_cards()}
    assert cards["Qwen2-Audio-7B"].modalities == "TA" and cards["Qwen2-Audio-7B"].vision_encoder is None
    assert cards["Qwen2.5-VL-7B"].modalities == "TV" and cards["Qwen2.5-VL-7B"].audio_encoder is None
    assert cards["Qwen2.5-Omni-7B"].time_interleaved is True
    assert cards["Baichuan-Omni-1.5"].time_interleaved is None  # unknown stays unknown


@pytest.mark.parametrize(
    ("backend", "name", "want"),
    [
        ("hf", "Qwen/Qwen2.5-Omni-7B", "Qwen2.5-Omni-7B"),
        ("vllm", "qwen2.5_omni_3b", "Qwen2.5-Omni-3B"),
        ("openai", "Qwen/Qwen3-Omni-30B-A3B-Instruct", "Qwen3-Omni-30B-A3B"),
        ("hf", "openbmb/MiniCPM-o-2_6", "MiniCPM-o-2.6"),
        ("cascade", "", "Cascade-Gemma3-270M"),
        ("scripted", "my-model", None),
    ],
)
def test_card_for_matches_names_and_backends(backend, name, want):
    card = card_for(ModelSpec(backend=backend, name=name))
    assert (card.id if card else None) == want


def test_explicit_card_option_wins_and_unknown_is_an_error():
    spec = ModelSpec(backend="openai", name="served-model", options={"card": "qwen2.5-omni-3b"})
    assert card_for(spec).id == "Qwen2.5-Omni-3B"
    with pytest.raises(ConfigError, match="no known model card"):
        card_for(ModelSpec(backend="hf", name="x", options={"card": "nope"}))


def test_user_cards_merge_and_replace(tmp_path):
    f = tmp_path / "cards.yaml"
    f.write_text(
        "- id: MyOmni-1B\n  match: [myomni]\n  llm: Tiny\n  llm_params_b: 1.0\n  fusion: concatenation\n"
        "  modalities: ta\n"
        "- id: Qwen2.5-Omni-7B\n  match: [qwen2.5-omni-7b]\n  llm_params_b: 7.0\n"
    )
    cards = load_cards([f])
    by_id = {c.id: c for c in cards}
    assert by_id["MyOmni-1B"].modalities == "TA"
    assert by_id["Qwen2.5-Omni-7B"].llm_params_b == 7.0  # replaced
    assert len(cards) == len(builtin_cards()) + 1
    assert card_for(ModelSpec(backend="hf", name="org/MyOmni"), cards).id == "MyOmni-1B"


def test_bad_user_card_names_the_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("- id: X\n  llm_size: 3\n")
    with pytest.raises(ConfigError, match="llm_size"):
        load_cards([f])
