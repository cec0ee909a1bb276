"""`scripted`: a deterministic TEST DOUBLE, not a model.

It answers from a rule or a table so that the engine, the store and the report can be tested
without weights. Options:

- `rule`: "constant" (always `default`), "table" (first key of `answers` found in the
  conversation's text wins, else `default`), or "hash" (a choice from `choices` picked by a
  hash of the conversation text: deterministic, label-blind noise).
- `delay`: seconds slept per batch, standing in for a model's cost.
- `fail_on`: a substring; a conversation containing it raises, to exercise error handling.
- `raise_on`: a substring; a batch holding a conversation that contains it makes the whole
  `generate`/`score` call raise a plain `RuntimeError` (as a CUDA out-of-memory or a server's
  "prompt too long" would), to exercise the executor's per-sample isolation.
- `other_logprob`: the score-mode log-likelihood of every option but the scripted answer (default
  -inf: a one-hot answer; a finite value lets a calibration prior be estimated).
"""

from __future__ import annotations

import hashlib
import math
import time

from ..core.errors import ModelError
from ..core.specs import GenerationSpec
from ..core.types import Generation
from .base import Conversation, Model


class ScriptedModel(Model):
    def _text(self, conv: Conversation) -> str:
        return "\n".join(m.text for m in conv)

    def _answer(self, conv: Conversation) -> str:
        opts = self.spec.options
        text = self._text(conv)
        fail_on = opts.get("fail_on")
        if fail_on and fail_on in text:
            raise ModelError(f"scripted failure: conversation contains {fail_on!r}")
        rule = opts.get("rule", "constant")
        if rule == "constant":
            return str(opts.get("default", ""))
        if rule == "table":
            for key, answer in (opts.get("answers") or {}).items():
                if key in text:
                    return str(answer)
            return str(opts.get("default", ""))
        if rule == "hash":
            choices = opts.get("choices") or [""]
            h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
            return str(choices[h % len(choices)])
        raise ModelError(f"scripted: unknown rule {rule!r} (constant, table, hash)")

    def _modalities(self, conv: Conversation) -> tuple[str, ...]:
        kinds = {p.kind for m in conv for p in m.parts}
        return tuple(m for m, k in (("T", "text"), ("A", "audio"), ("V", "video")) if k in kinds)

    def _delay(self) -> None:
        delay = float(self.spec.options.get("delay", 0.0))
        if delay:
            time.sleep(delay)

    def _raise_on(self, batch: list[Conversation]) -> None:
        marker = self.spec.options.get("raise_on")
        if marker and any(marker in self._text(c) for c in batch):
            raise RuntimeError(f"scripted test double: plain exception for a batch containing {marker!r}")

    def generate(self, batch: list[Conversation], gen: GenerationSpec) -> list[Generation]:
        self._delay()
        self._raise_on(batch)
        out = []
        for conv in batch:
            try:
                out.append(Generation(text=self._answer(conv), modalities=self._modalities(conv)))
            except ModelError as e:
                out.append(Generation(text="", error=str(e)))
        return out

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        """Log-likelihood 0 for the scripted answer, `other_logprob` (-inf) for the others."""
        gens = self.generate(batch, gen)
        other = float(self.spec.options.get("other_logprob", -math.inf))
        for g in gens:
            if g.error is None:
                g.scores = {o: (0.0 if o == g.text else other) for o in options}
        return gens
