"""A test double on a real model's output layer: force which token each row emits at each step."""


class ForcedTokens:
    """Forward hook on `lm_head`: row r's last-position logits make scripts[r][step] the only choice
    (its last token once the script runs out). Use as a context manager; the hook is removed on exit."""

    def __init__(self, lm_head, scripts):
        self.scripts, self.step = scripts, 0
        self.handle = lm_head.register_forward_hook(self.hook)

    def hook(self, module, args, out):
        out = out.clone()
        for r, script in enumerate(self.scripts):
            t = script[min(self.step, len(script) - 1)]
            out[r, -1, :] = -1e4
            out[r, -1, t] = 0.0
        self.step += 1
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()
