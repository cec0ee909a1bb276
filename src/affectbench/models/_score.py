"""Option log-likelihoods from one prompt forward and its KV cache (the `hf` backend's score mode).

The prompt (with its media) runs once; its cache is repeated for the options, which then run as one
short right-padded batch. Exact: equal to scoring every prompt+option sequence on its own, since
attention is causal and the options' positions continue the prompt's (for multimodal-RoPE models,
Qwen2.5-/Qwen3-Omni and Qwen2-VL, the text positions after the prompt plus its `rope_deltas`).

Tokenisation boundary (as lm-evaluation-harness's `_encode_pair`): the prompt's trailing spaces belong
to the option, and an option's tokens are those of tokenize(prompt + option) after the prompt without
them; where the last prompt tokens merge with an option's first characters, the prompt is cut back to
the longest token prefix shared by the prompt and every prompt+option, and the rest is scored with the option.
"""

from __future__ import annotations

from typing import Any


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def continuations(tok: Any, prompt: str, options: list[str]) -> tuple[int, list[list[int]]]:
    """(back, per-option token ids): how many trailing prompt tokens must be re-scored with the options,
    and each option's tokens from there on. `prompt` is the rendered chat text (media placeholders
    unexpanded: they are single added tokens, and the boundary lies after them). ValueError for an
    option that adds no token."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    full = [tok(prompt + o, add_special_tokens=False)["input_ids"] for o in options]
    # lm-eval moves the prompt's trailing spaces into the continuation: never keep a token past them
    ctx = tok(prompt.rstrip(" "), add_special_tokens=False)["input_ids"]
    keep = min([len(p), common_prefix(p, ctx)] + [common_prefix(p, f) for f in full])
    conts = [f[keep:] for f in full]
    for o, c in zip(options, conts, strict=True):
        if not c:
            raise ValueError(f"option {o!r} adds no token after the prompt")
    return len(p) - keep, conts


def option_logprobs(model: Any, inputs: dict, conts: list[list[int]], pad_id: int) -> list[float]:
    """log P(cont | prompt) for each continuation, from one forward of `inputs` (a processor output for ONE
    prompt, batch 1, no padding) and its cache. Returns floats in the order of `conts`."""
    import torch

    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ValueError("option_logprobs scores one prompt at a time")
    n_o, n_p = len(conts), ids.shape[1]
    out = model(**inputs, use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts each option's first token
    cache = getattr(out, "cache", None) or out.past_key_values
    cache.batch_repeat_interleave(n_o)
    width = max(map(len, conts))
    opt = torch.full((n_o, width), pad_id, dtype=torch.long, device=ids.device)
    mask = torch.zeros((n_o, width), dtype=torch.long, device=ids.device)
    for j, c in enumerate(conts):  # right-padded: row j's real tokens first
        opt[j, : len(c)] = torch.tensor(c, device=ids.device)
        mask[j, : len(c)] = 1
    positions = torch.arange(n_p, n_p + width, device=ids.device)[None].expand(n_o, -1)
    deltas = getattr(getattr(model, "model", None), "rope_deltas", None)
    if deltas is not None:  # multimodal RoPE: text after the prompt continues at its max position + 1
        positions = (positions + deltas.to(ids.device).reshape(-1)[:1]).unsqueeze(0).expand(3, -1, -1)
    full_mask = torch.cat([inputs["attention_mask"].expand(n_o, -1), mask], dim=1)
    out = model(input_ids=opt, attention_mask=full_mask, position_ids=positions, cache=cache, use_cache=True)
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # row t predicts option token t + 1
    scores = []
    for j, c in enumerate(conts):
        rest = (
            logp[j, : len(c) - 1].gather(1, torch.tensor(c[1:], device=ids.device)[:, None]).sum()
            if len(c) > 1
            else 0.0
        )
        scores.append(float(first[c[0]]) + float(rest))
    return scores
