"""Tiny, randomly initialised real architectures (Qwen2.5-Omni / Qwen3-Omni thinkers, Qwen2-Audio, Qwen2-VL, Gemma3 text).

No weights can be downloaded here, so tests build the real model classes from small configs and a
locally trained byte-level BPE tokenizer carrying the Qwen special tokens, then save model +
processor to a folder that `from_pretrained` (and the `hf` backend) loads like a hub checkpoint.
Hidden sizes are 32 and every tower has one layer: a forward pass costs milliseconds on CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen-style chat template: content is a string or a list of {"type": text|audio|video|image} parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'audio' %}{{ AUDIO }}"
    "{% elif part['type'] == 'video' %}{{ VIDEO }}"
    "{% elif part['type'] == 'image' %}{{ IMAGE }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEMPLATE_SLOTS = {
    "omni": {
        "AUDIO": "<|audio_bos|><|AUDIO|><|audio_eos|>",
        "VIDEO": "<|vision_bos|><|VIDEO|><|vision_eos|>",
        "IMAGE": "<|vision_bos|><|IMAGE|><|vision_eos|>",
    },
    "audio": {"AUDIO": "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n", "VIDEO": "", "IMAGE": ""},
    "vl": {
        "AUDIO": "",
        "VIDEO": "<|vision_start|><|video_pad|><|vision_end|>",
        "IMAGE": "<|vision_start|><|image_pad|><|vision_end|>",
    },
}

CORPUS = [
    "The speaker sounds happy and smiles. The speaker sounds angry and frowns.",
    "positive negative neutral joy sadness anger fear disgust surprise sarcastic humorous",
    "Answer with one word. What is the sentiment of this clip? You are a helpful assistant.",
    "system user assistant 0123456789 -3 -2 -1 0 1 2 3 yes no",
]


def chat_template(kind: str) -> str:
    t = CHAT_TEMPLATE
    for slot, text in TEMPLATE_SLOTS[kind].items():
        t = t.replace("{{ " + slot + " }}", text)
    return t


def _byte_bpe(corpus: list[str], vocab_size: int, special: list[str], unk: str | None = None, alphabet: bool = False):
    """A byte-level BPE `tokenizers.Tokenizer` trained on `corpus` (with the full byte alphabet when `alphabet`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if alphabet else [],
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def tiny_tokenizer(kind: str = "omni", vocab_size: int = 400):
    """A byte-level BPE trained on a few sentences, with the Qwen special tokens, as a fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    tok = _byte_bpe(CORPUS * 4, vocab_size, SPECIAL, alphabet=True)
    extra = {}
    if kind == "omni":
        extra = {
            "image_token": "<|IMAGE|>",
            "audio_token": "<|AUDIO|>",
            "video_token": "<|VIDEO|>",
            "vision_bos_token": "<|vision_bos|>",
            "vision_eos_token": "<|vision_eos|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        }
    elif kind == "audio":
        extra = {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}
    elif kind == "vl":
        extra = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=extra,
        padding_side="left",
    )
    fast.chat_template = chat_template(kind)
    return fast


def _vision_processors(temporal_patch_size: int = 2):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": 28 * 28 * 4, "longest_edge": 56 * 56}
    common = {"size": size, "patch_size": 14, "merge_size": 2, "temporal_patch_size": temporal_patch_size}
    image = Qwen2VLImageProcessor(**common)
    video = Qwen2VLVideoProcessor(**common)
    return image, video


def _text_config(tok, hidden: int = 32, max_positions: int = 4096) -> dict:
    head = hidden // 2  # mrope sections split head_dim / 2 as Qwen2.5-VL's (16, 24, 24) split 128 / 2
    return {
        "vocab_size": len(tok),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": max_positions,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [head // 8, 3 * head // 16, 3 * head // 16],
        },
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "tie_word_embeddings": False,
    }


def _random_model(cls, config, tok, seed: int):
    """`cls(config)` with seeded random weights, in eval mode, padding and stopping with `tok`'s tokens."""
    import torch

    torch.manual_seed(seed)
    model = cls(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model


def _save_with_processor(model, proc, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def _whisper_features():
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000)


def _omni_processor(cls, tok):
    """An Omni processor (`cls`): the tiny vision processors, Whisper features, `tok` and the omni template."""
    image, video = _vision_processors()
    return cls(
        image_processor=image,
        video_processor=video,
        feature_extractor=_whisper_features(),
        tokenizer=tok,
        chat_template=chat_template("omni"),
    )


# how the vision towers cut frames into patches (must match `_vision_processors`)
VISION_PATCHES = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}

# one-layer Whisper-style audio encoder shared by the Omni thinker and Qwen2-Audio
AUDIO_ENCODER = {
    "num_mel_bins": 128,
    "encoder_layers": 1,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "d_model": 32,
    "max_source_positions": 1500,
}


def tiny_qwen_omni(
    out_dir: str | Path, seed: int = 0, real_tokenizer=None, hidden: int = 32, full: bool = False
) -> Path:
    """Save a tiny Qwen2.5-Omni thinker + Qwen2_5OmniProcessor to `out_dir`; return it.

    `real_tokenizer` (from `qwen_omni_tokenizer`): use it and the released processor settings
    (`qwen_omni_processor`) instead of the tiny BPE and tiny vision processors. `hidden`: the language
    model's width (2 heads; 128 gives head_dim 64, a size vLLM's CPU attention takes). `full`: save the
    released layout (a whole Qwen2_5OmniForConditionalGeneration without talker), which vLLM's registry takes."""
    from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    tok = real_tokenizer if real_tokenizer is not None else tiny_tokenizer("omni")
    config = Qwen2_5OmniThinkerConfig(
        audio_config={**AUDIO_ENCODER, "output_dim": hidden, "n_window": 50},
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
        # the released context (32768) with the released processor settings: their long clips fit
        text_config=_text_config(tok, hidden, 32768 if real_tokenizer is not None else 4096),
        audio_token_index=tok.audio_token_id,
        image_token_index=tok.image_token_id,
        video_token_index=tok.video_token_id,
        audio_start_token_id=tok.convert_tokens_to_ids("<|audio_bos|>"),
        audio_end_token_id=tok.convert_tokens_to_ids("<|audio_eos|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_bos|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_eos|>"),
        pad_token_id=tok.pad_token_id,
    )
    model = _random_model(Qwen2_5OmniThinkerForConditionalGeneration, config, tok, seed)
    proc = qwen_omni_processor(tok) if real_tokenizer is not None else _omni_processor(Qwen2_5OmniProcessor, tok)
    if full:  # the released layout: a whole Qwen2_5OmniForConditionalGeneration, thinker weights under `thinker.`
        from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

        thinker = model
        model = Qwen2_5OmniForConditionalGeneration(
            Qwen2_5OmniConfig(thinker_config=config.to_dict(), enable_audio_output=False)
        ).eval()
        model.thinker.load_state_dict(thinker.state_dict())
        out = _save_with_processor(model, proc, out_dir)
        import torch

        torch.save({}, out / "spk_dict.pt")  # the talker's speaker table (released checkpoints ship one); none here
        return out
    return _save_with_processor(model, proc, out_dir)


def tiny_qwen3_omni(out_dir: str | Path, seed: int = 0, full: bool = False) -> Path:
    """Save a tiny Qwen3-Omni-MoE thinker (2 experts, top-1) + Qwen3OmniMoeProcessor to `out_dir`; return it.

    `full`: save a whole `Qwen3OmniMoeForConditionalGeneration` holding these same thinker weights under
    `thinker.` and a config that claims `enable_audio_output` (as released checkpoints do) but no talker weights.
    """
    from transformers import (
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeProcessor,
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    tok = tiny_tokenizer("omni")
    hidden = 32
    text = {**_text_config(tok, hidden), "head_dim": 16, "moe_intermediate_size": 32}
    text.update(num_experts=2, num_experts_per_tok=1)
    config = Qwen3OmniMoeThinkerConfig(
        audio_config={**AUDIO_ENCODER, "output_dim": hidden, "n_window": 50, "downsample_hidden_size": 8},
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
            **VISION_PATCHES,
        },
        text_config=text,
        audio_token_id=tok.audio_token_id,
        image_token_id=tok.image_token_id,
        video_token_id=tok.video_token_id,
        audio_start_token_id=tok.convert_tokens_to_ids("<|audio_bos|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_bos|>"),  # read by get_rope_index, not a field
        user_token_id=tok.convert_tokens_to_ids("user"),
        pad_token_id=tok.pad_token_id,
    )
    model = _random_model(Qwen3OmniMoeThinkerForConditionalGeneration, config, tok, seed)
    if full:
        thinker = model
        # the default talker config cannot even be built here, so build without it, then claim it like a release
        model = Qwen3OmniMoeForConditionalGeneration(
            Qwen3OmniMoeConfig(thinker_config=config.to_dict(), enable_audio_output=False)
        ).eval()
        model.thinker.load_state_dict(thinker.state_dict())
        model.config.enable_audio_output = True
    return _save_with_processor(model, _omni_processor(Qwen3OmniMoeProcessor, tok), out_dir)


def tiny_qwen2_audio(out_dir: str | Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a tiny Qwen2-Audio (audio + text, no vision) with its processor to `out_dir` (`hidden`: the
    language model's width, 2 heads)."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

    tok = tiny_tokenizer("audio")
    text = _text_config(tok, hidden)
    text.pop("rope_parameters")
    text["model_type"] = "qwen2"
    config = Qwen2AudioConfig(audio_config=dict(AUDIO_ENCODER), text_config=text, audio_token_index=tok.audio_token_id)
    model = _random_model(Qwen2AudioForConditionalGeneration, config, tok, seed)
    proc = Qwen2AudioProcessor(
        feature_extractor=_whisper_features(), tokenizer=tok, chat_template=chat_template("audio")
    )
    return _save_with_processor(model, proc, out_dir)


def tiny_qwen2_vl(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a tiny Qwen2-VL (vision + text, no audio) with its processor to `out_dir`."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    tok = tiny_tokenizer("vl")
    hidden = 32
    config = Qwen2VLConfig(
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            **VISION_PATCHES,
        },
        text_config=_text_config(tok, hidden),
        image_token_id=tok.image_token_id,
        video_token_id=tok.video_token_id,
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    model = _random_model(Qwen2VLForConditionalGeneration, config, tok, seed)
    image, video = _vision_processors()
    proc = Qwen2VLProcessor(
        image_processor=image, video_processor=video, tokenizer=tok, chat_template=chat_template("vl")
    )
    return _save_with_processor(model, proc, out_dir)


# ---- Gemma3 text model (the cascade backend's LLM; the answer-only loss)

GEMMA_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def tiny_gemma3(vocab_size: int, *, max_positions: int = 512, seed: int = 0, **token_ids: int):
    """A randomly initialised 2-layer, hidden-32 Gemma3 text model in eval mode.

    `token_ids`: pad_token_id / bos_token_id / eos_token_id for the config (Gemma's defaults otherwise).
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=16,
        max_position_embeddings=max_positions,
        **token_ids,
    )
    return Gemma3ForCausalLM(config).eval()


def tiny_gemma3_checkpoint(out_dir: str | Path, corpus: list[str], vocab_size: int = 300) -> Path:
    """Save a Gemma-style BPE tokenizer trained on `corpus` and a `tiny_gemma3` sized to it to `out_dir`."""
    from transformers import PreTrainedTokenizerFast

    out = Path(out_dir)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_byte_bpe(corpus, vocab_size, GEMMA_SPECIAL, unk="<unk>"),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tok.save_pretrained(out)
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    tiny_gemma3(len(tok), **ids).save_pretrained(out)
    return out


# Qwen2.5-Omni's special tokens in id order from 151643 (its tokenizer_config.json's added_tokens_decoder)
QWEN_OMNI_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
]
# Qwen2's pre-tokenizer split (single digits), as in its tokenizer.json
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def qwen_omni_tokenizer(cache_dir: str | Path | None = None):
    """The real Qwen2 BPE (151,643 tokens from `qwen.tiktoken` in the dashscope wheel; ids match the
    released tokenizer) plus Qwen2.5-Omni's special tokens from id 151643, as a fast tokenizer with the
    omni chat template. Converting takes ~10 s; with `cache_dir` the result is saved and reloaded."""
    from transformers import PreTrainedTokenizerFast

    if cache_dir is not None and (Path(cache_dir) / "tokenizer.json").exists():
        return PreTrainedTokenizerFast.from_pretrained(str(cache_dir))
    import dashscope
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken"
    from tokenizers import AddedToken

    tok = TikTokenConverter(vocab_file=str(vocab), pattern=QWEN_PATTERN).converted()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_OMNI_SPECIAL])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_OMNI_SPECIAL[1:],
        extra_special_tokens={
            "image_token": "<|IMAGE|>",
            "audio_token": "<|AUDIO|>",
            "video_token": "<|VIDEO|>",
            "vision_bos_token": "<|vision_bos|>",
            "vision_eos_token": "<|vision_eos|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        },
        padding_side="left",
    )
    fast.chat_template = chat_template("omni")
    if cache_dir is not None:
        fast.save_pretrained(str(cache_dir))
    return fast


def qwen_omni_processor(tok=None):
    """A Qwen2.5-Omni processor as released: default Qwen2-VL image/video processors (patch 14, merge 2,
    128..768 tokens per video frame), a 128-mel Whisper feature extractor, and `tok` (the real Qwen tokenizer)."""
    from transformers import Qwen2_5OmniProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(),
        video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=_whisper_features(),
        tokenizer=tok if tok is not None else qwen_omni_tokenizer(),
        chat_template=chat_template("omni"),
    )
