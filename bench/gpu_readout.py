"""GPU check of the readout arm at real scale: a random-weight Qwen2.5-Omni-7B thinker (the released
config's sizes, bf16, SDPA) — probe feature extraction over every layer, a probe fit, and `lora_head`
optimizer steps (LoRA r=32 on the LLM's linear layers + the linear head, MSE) — with time per step and
peak GPU memory. Text-only inputs of `--tokens` random ids (no tokenizer or processor needed).

    .venv/bin/python bench/gpu_readout.py                  # needs CUDA; exits 0 with a message without it
    .venv/bin/python bench/gpu_readout.py --tiny --device cpu   # the same code path on a tiny config (CPU)

Sizes: Qwen/Qwen2.5-Omni-7B `config.json` (thinker_config): text 3584 hidden, 18944 MLP, 28 layers,
28 heads / 4 KV heads, vocab 152064, M-RoPE sections [16, 24, 24]; audio encoder 32 × 1280; vision
32 × 1280 → 3584. Budget: under 4 minutes on one GPU (building the model on the device takes seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

SEVEN_B = {
    "text_config": {
        "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
        "sliding_window": 32768, "use_sliding_window": False, "tie_word_embeddings": False, "hidden_act": "silu",
    },
    "audio_config": {
        "d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
        "num_mel_bins": 128, "output_dim": 3584, "max_source_positions": 1500, "n_window": 100,
    },
    "vision_config": {
        "depth": 32, "embed_dim": 1280, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu",
    },
    # special token ids of the released tokenizer (151643 = <|endoftext|> … 151656 = <|VIDEO|>)
    "audio_token_index": 151646, "image_token_index": 151655, "video_token_index": 151656,
    "audio_start_token_id": 151647, "audio_end_token_id": 151648, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "pad_token_id": 151643,
}  # fmt: skip
TINY = {
    "text_config": dict(SEVEN_B["text_config"], hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=1024,
                        rope_scaling={"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"}),
    "audio_config": dict(SEVEN_B["audio_config"], d_model=32, encoder_layers=1, encoder_attention_heads=2,
                         encoder_ffn_dim=64, output_dim=64),
    "vision_config": dict(SEVEN_B["vision_config"], depth=1, embed_dim=32, hidden_size=32, intermediate_size=64,
                          num_heads=2, out_hidden_size=64, fullatt_block_indexes=[0]),
    **{k: v - 151643 + 1000 for k, v in SEVEN_B.items() if k.endswith(("_id", "_index"))},
}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a tiny config of the same architecture (dry check)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--samples", type=int, default=32, help="probe samples (features of every layer)")
    ap.add_argument("--steps", type=int, default=3, help="lora_head optimizer steps (the first is warm-up)")
    a = ap.parse_args()

    import torch

    cuda = a.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_readout: no CUDA device here; nothing run. Pass --tiny --device cpu for a dry check.")
        return 0
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from affectbench.core.specs import FinetuneSpec
    from affectbench.core.types import TaskType
    from affectbench.finetune.readout import fit_probe, forward_states, head_model, head_outputs, pooled_states

    dtype = torch.bfloat16 if cuda else torch.float32
    sizes = TINY if a.tiny else SEVEN_B
    config = Qwen2_5OmniThinkerConfig(**sizes)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(a.device):
        model = Qwen2_5OmniThinkerForConditionalGeneration(config).to(dtype).eval()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"device: {torch.cuda.get_device_name(0) if cuda else 'cpu'}; torch {torch.__version__}; "
          f"{n_params / 1e6:,.1f} M params ({'tiny' if a.tiny else 'Qwen2.5-Omni-7B thinker'}), "
          f"{dtype}, built in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    gen = torch.Generator().manual_seed(0)

    def batch(n: int):
        ids = torch.randint(0, 1000 if a.tiny else 150000, (n, a.tokens), generator=gen)  # below the special ids
        mask = torch.ones_like(ids)
        mask[0, : a.tokens // 4] = 0  # one left-padded row
        return {"input_ids": ids.to(a.device), "attention_mask": mask.to(a.device)}

    rows = []
    # probe: features of every layer (hidden_states 0 … L), last non-padding token
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    feats = []
    sync()
    t0 = time.perf_counter()
    for _ in range(max(1, a.samples // a.batch)):
        enc = batch(a.batch)
        with torch.inference_mode():
            feats.append(pooled_states(forward_states(model, enc), enc["attention_mask"], "last").cpu())
    sync()
    dt = time.perf_counter() - t0
    x = torch.cat(feats).numpy()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    rows.append(("probe features", f"{x.shape[0] / dt:.1f} samples/s", f"{dt / len(feats):.3f} s/batch", peak))
    t0 = time.perf_counter()
    y = x[:, -1, 0].astype("float64")  # a target the last layer carries (random weights: nothing to learn)
    half = len(y) // 2
    fit = fit_probe(TaskType.REGRESSION, x[:half], y[:half], x[half:], y[half:], alphas=(1.0, 100.0))
    rows.append(("probe fit (CPU)", f"layer {fit.layer}/{x.shape[1] - 1}", f"{time.perf_counter() - t0:.2f} s", 0.0))

    # lora_head: LoRA r=32 on the LLM's linear layers + a linear head, MSE on the last layer's last token
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    ft = FinetuneSpec(rank=32, alpha=64, dropout=0.0)
    peft_model = head_model(model, ft, config.text_config.hidden_size, 1)
    peft_model.train()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=2e-4)
    layer = config.text_config.num_hidden_layers
    times = []
    for _ in range(a.steps):
        enc = batch(a.batch)
        target = torch.randn(a.batch, device=a.device)
        sync()
        t0 = time.perf_counter()
        out = head_outputs(peft_model, enc, layer, "last")[:, 0].float()
        loss = torch.nn.functional.mse_loss(out, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    steady = sum(times[1:]) / max(1, len(times) - 1) if len(times) > 1 else times[0]
    n_train = sum(p.numel() for p in trainable)
    rows.append(
        ("lora_head step", f"{n_train / 1e6:.1f} M trainable", f"{steady:.3f} s/step (first {times[0]:.2f})", peak)
    )
    print(f"batch {a.batch} × {a.tokens} tokens")
    print("stage | rate | time | peak GiB")
    for name, rate, t, pk in rows:
        print(f"{name} | {rate} | {t} | {'n/a (no CUDA)' if pk != pk else f'{pk:.2f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
