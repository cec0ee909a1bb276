"""What bench_zoo.py and gpu_smoke.py share: each tested family's tiny real-architecture model (the
builders of tests/_tiny.py and tests/_tiny_zoo.py), optionally with its processor at released scale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests import _tiny, _tiny_zoo  # noqa: E402
from tests._clips import make_clip  # noqa: E402, F401  (re-exported for the scripts)

# family key → (builder, the modalities it takes)
ZOO = {
    "qwen2_5_omni": (_tiny.tiny_qwen_omni, "TAV"),
    "gemma3n": (_tiny_zoo.tiny_gemma3n, "TAV"),
    "phi4_multimodal": (_tiny_zoo.tiny_phi4_multimodal, "TAV"),
    "qwen2_5_vl": (_tiny_zoo.tiny_qwen2_5_vl, "TV"),
    "qwen2_audio": (_tiny.tiny_qwen2_audio, "TA"),
}


def build(key: str, out: Path, full_scale: bool = False) -> Path:
    """The tiny model of `key` in `out`; `full_scale` swaps in the processor settings of the released
    checkpoints (processor class defaults; Whisper features at 128 mel bins; Gemma 3n 768 px, 256 tokens
    per image), so input token counts are the real ones while the model stays tiny."""
    builder, _ = ZOO[key]
    if key == "gemma3n" and full_scale:
        return builder(out, image_size=768, image_tokens=256)
    path = builder(out)
    if not full_scale:
        return path
    from transformers import (
        AutoProcessor,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalImageProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    small = AutoProcessor.from_pretrained(path)
    template = small.chat_template or small.tokenizer.chat_template
    parts = {"tokenizer": small.tokenizer, "chat_template": template}
    if key in ("qwen2_5_omni", "qwen2_5_vl"):
        parts.update(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor())
    if key in ("qwen2_5_omni", "qwen2_audio"):
        parts["feature_extractor"] = WhisperFeatureExtractor(feature_size=128)
    if key == "phi4_multimodal":
        parts.update(image_processor=Phi4MultimodalImageProcessor(), audio_processor=Phi4MultimodalFeatureExtractor())
    type(small)(**parts).save_pretrained(path)
    return path
