"""Model sizes from configs on the meta device (`models.sizing`) against a loaded model's parameters and
the KV cache a real forward pass keeps, and the packaged released configs against their model cards."""

from __future__ import annotations

import pytest

from affectbench.models import sizing

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_omni(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    return tiny_qwen_omni(tmp_path_factory.mktemp("size_omni"))


def _cache_bytes(cache) -> int:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return sum(t.numel() * t.element_size() for layer in layers for t in (layer.keys, layer.values))
    return sum(t.numel() * t.element_size() for kv in cache for t in kv)


def test_meta_size_equals_the_loaded_model_and_its_kv_cache(tiny_omni):
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    size = sizing.size_of(str(tiny_omni), "float32")
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_omni, dtype=torch.float32).eval()
    assert size.params == sum(p.numel() for p in model.parameters())
    assert size.weight_bytes == size.params * 4 and size.source.endswith("config.json")
    n = 17
    with torch.inference_mode():
        out = model(input_ids=torch.randint(0, 100, (1, n)), use_cache=True)
    assert size.kv_bytes(n) == _cache_bytes(out.past_key_values)
    assert size.context == model.config.get_text_config().max_position_embeddings


@pytest.mark.parametrize(
    "name, card_params, dtype_gib",
    [
        # Qwen2.5-Omni-7B: the thinker (what runs) = Qwen2.5-7B (7.61e9, its model card) + ViT + audio
        # encoder; the whole checkpoint with talker and token2wav is 10.7e9 on the model card.
        ("./models/Qwen2.5-Omni-7B", 8.93e9, 16.64),
        ("./models/Qwen2.5-VL-7B-Instruct", 8.29e9, 15.45),  # model card: 8.29B params
        ("./models/Qwen2-Audio-7B-Instruct", 8.40e9, 15.64),  # model card: 8.4B params
    ],
)
def test_packaged_configs_match_the_model_cards(name, card_params, dtype_gib):
    size = sizing.size_of(name, "bfloat16")
    assert size is not None and "packaged config" in size.source
    assert abs(size.params / card_params - 1) < 0.005, size.params
    assert abs(size.weight_bytes / sizing.GIB - dtype_gib) < 0.01
    assert size.weight_bytes / sizing.GIB != pytest.approx(21.12, abs=0.1)  # the transformers-default config's figure


def test_omni_thinker_parts_and_kv():
    size = sizing.size_of("Qwen2.5-Omni-7B")
    llm = size.parts["model.language_model"] + size.parts["lm_head"]
    assert abs(llm / 7.61e9 - 1) < 0.005  # Qwen2.5-7B model card: 7.61B
    assert abs(size.parts["model.visual"] / 675e6 - 1) < 0.01  # model_cards.yaml: Qwen2.5-VL ViT (~675M)
    assert abs(size.parts["model.audio_tower"] / 0.637e9 - 1) < 0.01  # Whisper-large-v3 encoder ≈ 0.637e9
    assert size.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2  # 57,344 B/token in bf16 (28 layers, 4 KV heads, dim 128)
    assert size.context == 32768


def test_unknown_model_has_no_size():
    assert sizing.size_of("./models/some-unknown-model") is None
