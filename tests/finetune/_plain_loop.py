"""A plain PyTorch LoRA loop: the reference the Trainer path is checked against.

Written from the recipe's definition, not from `affectbench.finetune.lora`: one optimizer step per
global batch, the model's own `labels=` loss (transformers' ForCausalLMLoss, a token-weighted mean),
torch AdamW, clip_grad_norm_, and a LambdaLR with warm-up step k (1-based) at lr * k / W, then
linear decay (total - s) / (total - W). Only the LoRA initialisation and the input encoding come
from the project (`peft_model`, the backend's `encode`): what is compared is the optimisation.
"""

from __future__ import annotations


def plain_lora(trainable, batches, ft, *, seed: int = 0, warmup: int = 0):
    """Train `ft`'s LoRA on `batches` (a list of optimizer steps, each a list of pairs), in order;
    returns (per-step losses, per-step learning rates, {adapter tensor name: tensor})."""
    import torch

    from affectbench.finetune.lora import peft_model, seed_everything

    seed_everything(seed)
    model = peft_model(trainable.module, ft)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=ft.lr, weight_decay=ft.weight_decay)
    total = len(batches)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return max(0.0, (total - s) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    losses, lrs = [], []
    for pairs in batches:
        enc = trainable.encode([trainable.prepare(p.conversation) for p in pairs], [p.answer for p in pairs])
        enc = {k: v for k, v in enc.items() if hasattr(v, "shape")}
        lrs.append(opt.param_groups[0]["lr"])
        loss = model(**enc).loss  # labels= inside enc: the model's own loss
        loss.backward()
        if ft.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, ft.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    from peft import get_peft_model_state_dict

    state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    return losses, lrs, state
