"""Tiny, randomly initialised Gemma 3n and Phi-4-multimodal checkpoints built from their real config
classes and saved with their real processor classes (tokenizers trained locally; no hub access).

Gemma 3n's token ids follow the layout its model hard-codes: text ids below `vocab_size_per_layer_input`,
then 128 vision ids (`<end_of_image>` first, `<image_soft_token>` second), then 128 audio ids
(`<end_of_audio>`, `<audio_soft_token>`). Its vision tower is timm's real `mobilenetv5_300m_enc`
narrowed through `model_args` (four one-to-three-block stages, 8-32 channels, a 2×2 fusion grid, so
an image is 4 soft tokens). Chat templates follow the released ones' structure (Gemma's writes `<bos>`).
"""

from __future__ import annotations

import copy
from pathlib import Path

from tests._tiny import CORPUS, _byte_bpe, _random_model

# the structure of the released Gemma 3n instruction template (it writes BOS itself)
GEMMA3N_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{ '<audio_soft_token>' }}"
    "{%- elif item['type'] == 'image' -%}{{ '<image_soft_token>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# Phi-4-multimodal's <|role|>…<|end|> turns, with image/audio placeholders for list content
PHI4_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|image|>{% elif c['type'] == 'audio' %}<|audio|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

GEMMA3N_TEXT_VOCAB = 384
# timm block strings (its own arch-def syntax): stem→er→uir, then uir + multi-query attention
MOBILENETV5_TINY = [
    ["er_r1_k3_s2_e4_c8"],
    ["uir_r1_a3_k5_s2_e2_c16"],
    ["uir_r1_a5_k5_s2_e2_c16", "mqa_r1_k3_h2_s1_d8_c16", "uir_r1_a0_k0_s1_e2_c16"],
    ["uir_r1_a5_k5_s2_e2_c32", "mqa_r1_k3_h2_s1_d8_c32", "uir_r1_a0_k0_s1_e2_c32"],
]


def _gemma3n_tokenizer():
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    special = [
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<start_of_audio>",
    ]
    tok = _byte_bpe(CORPUS * 4, 300, special, unk="<unk>", alphabet=True)
    v = GEMMA3N_TEXT_VOCAB
    tok.add_special_tokens([f"<unused{i}>" for i in range(v - tok.get_vocab_size())])
    tok.add_special_tokens(["<end_of_image>", "<image_soft_token>"] + [f"<vision_{i}>" for i in range(126)])
    tok.add_special_tokens(["<end_of_audio>", "<audio_soft_token>"] + [f"<audio_{i}>" for i in range(126)])
    bos = tok.token_to_id("<bos>")
    # like Gemma's tokenizer, it adds <bos> to every encoded text
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={
            "image_token": "<image_soft_token>",
            "audio_token": "<audio_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "boa_token": "<start_of_audio>",
            "eoa_token": "<end_of_audio>",
        },
        padding_side="left",
    )
    fast.chat_template = GEMMA3N_TEMPLATE
    assert fast.eoi_token_id == v and fast.eoa_token_id == v + 128, "Gemma 3n id layout"
    return fast


def tiny_gemma3n(
    out_dir: str | Path, seed: int = 0, zero_pad_row: bool = False, image_size: int = 96, image_tokens: int = 4
) -> Path:
    """Save a tiny Gemma3nForConditionalGeneration + Gemma3nProcessor to `out_dir`; return it.

    `image_size` (px square) and `image_tokens` (a square number: soft tokens per image) size the vision
    path; the released processor uses 768 and 256 (bench/bench_zoo.py builds that).

    `zero_pad_row`: keep the pad token's all-zero embedding row of the random init (NaN LoRA gradients)."""
    import torch
    from timm.models._efficientnet_builder import decode_arch_def
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
        Gemma3nProcessor,
        SiglipImageProcessor,
    )

    tok = _gemma3n_tokenizer()
    v = GEMMA3N_TEXT_VOCAB
    side = int(round(image_tokens**0.5))
    assert side * side == image_tokens, "image_tokens must be a square number"
    model_args = {"block_args": decode_arch_def(MOBILENETV5_TINY), "stem_size": 8, "msfa_output_resolution": side}
    config = Gemma3nConfig(
        text_config={
            "vocab_size": v + 256,
            "vocab_size_per_layer_input": v,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "hidden_size_per_layer_input": 8,
            "laurel_rank": 4,
            "num_kv_shared_layers": 0,
            "layer_types": ["sliding_attention", "full_attention"],
            "activation_sparsity_pattern": [0.0, 0.0],
            "sliding_window": 16,
            "max_position_embeddings": 4096,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": [tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")],
        },
        vision_config={"model_args": copy.deepcopy(model_args), "vocab_offset": v},
        audio_config={
            "hidden_size": 32,
            "conf_num_attention_heads": 2,
            "conf_num_hidden_layers": 1,
            "sscp_conv_channel_size": [8, 8],
            "vocab_offset": v + 128,
        },
        vision_soft_tokens_per_image=image_tokens,
        audio_soft_tokens_per_image=188,
        boi_token_id=tok.boi_token_id,
        eoi_token_id=tok.eoi_token_id,
        image_token_id=tok.image_token_id,
        boa_token_id=tok.boa_token_id,
        eoa_token_id=tok.eoa_token_id,
        audio_token_id=tok.audio_token_id,
    )
    model = _random_model(Gemma3nForConditionalGeneration, config, tok, seed)
    model.config.vision_config.model_args = model_args  # timm fills the block dicts in place; save the clean ones
    with torch.no_grad():  # released checkpoints have a non-zero pad row; a zero row gives NaN LoRA grads
        emb = model.get_input_embeddings()
        if zero_pad_row:
            emb.weight[tok.pad_token_id].zero_()
        elif emb.weight[tok.pad_token_id].abs().sum() == 0:
            emb.weight[tok.pad_token_id].normal_(0, 0.02)
    proc = Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(),
        image_processor=SiglipImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tok,
        chat_template=GEMMA3N_TEMPLATE,
        image_seq_length=image_tokens,
        audio_seq_length=188,
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def _phi4_tokenizer():
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>", "<|audio|>"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_byte_bpe(CORPUS * 4, 400, special, alphabet=True),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image|>", "audio_token": "<|audio|>"},
        padding_side="left",
    )
    fast.chat_template = PHI4_TEMPLATE
    return fast


def tiny_phi4_multimodal(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a tiny Phi4MultimodalForCausalLM + Phi4MultimodalProcessor (its `audio_processor` is the
    feature extractor) to `out_dir`; return it. Images use the real 448-px crop (256+ tokens each)."""
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalForCausalLM,
        Phi4MultimodalImageProcessor,
        Phi4MultimodalProcessor,
    )

    tok = _phi4_tokenizer()
    config = Phi4MultimodalConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        original_max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=[tok.eos_token_id, tok.convert_tokens_to_ids("<|end|>")],
        pad_token_id=tok.pad_token_id,
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_token_id": tok.image_token_id,
        },
        audio_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_blocks": 1,
            "num_attention_heads": 2,
            "ext_pw_out_channel": 32,
            "depthwise_separable_out_channel": 32,
            "nemo_conv_channels": 32,
            "audio_token_id": tok.audio_token_id,
        },
    )
    model = _random_model(Phi4MultimodalForCausalLM, config, tok, seed)
    proc = Phi4MultimodalProcessor(
        image_processor=Phi4MultimodalImageProcessor(dynamic_hd=1),
        audio_processor=Phi4MultimodalFeatureExtractor(),
        tokenizer=tok,
        chat_template=PHI4_TEMPLATE,
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


BUILDERS = {"gemma3n": tiny_gemma3n, "phi4_multimodal": tiny_phi4_multimodal}


def tiny_qwen2_5_vl(out_dir: str | Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a tiny Qwen2.5-VL (window-attention ViT, vision + text) with Qwen2_5_VLProcessor to `out_dir`.
    `hidden`: the language model's width (2 heads; 128 gives head_dim 64 for vLLM's CPU attention)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    from tests._tiny import VISION_PATCHES, _text_config, _vision_processors, chat_template, tiny_tokenizer

    tok = tiny_tokenizer("vl")
    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
            "window_size": 56,
            **VISION_PATCHES,
        },
        text_config={**_text_config(tok, hidden), "bos_token_id": None},
        bos_token_id=None,  # the tiny vocabulary has no Qwen <|endoftext|> at id 151643
        image_token_id=tok.image_token_id,
        video_token_id=tok.video_token_id,
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    model = _random_model(Qwen2_5_VLForConditionalGeneration, config, tok, seed)
    image, video = _vision_processors()
    proc = Qwen2_5_VLProcessor(
        image_processor=image, video_processor=video, tokenizer=tok, chat_template=chat_template("vl")
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


BUILDERS["qwen2_5_vl"] = tiny_qwen2_5_vl


def zoo_builders() -> dict:
    """Family key → builder(out_dir) of its tiny random checkpoint (tests/_tiny.py and this module)."""
    from tests import _tiny

    return {
        "qwen2_5_omni": _tiny.tiny_qwen_omni,
        "qwen3_omni_moe": _tiny.tiny_qwen3_omni,
        "qwen2_vl": _tiny.tiny_qwen2_vl,
        "qwen2_audio": _tiny.tiny_qwen2_audio,
        **BUILDERS,
    }


def built_once(tmp_path_factory):
    """A module fixture's body: key -> folder of that family's tiny checkpoint, each built once."""
    cache: dict = {}

    def get(key):
        if key not in cache:
            cache[key] = zoo_builders()[key](tmp_path_factory.mktemp(f"b-{key}"))
        return cache[key]

    return get
