"""Successive halving whose decisions do not depend on which trial ran first.

Successive halving (Jamieson & Talwalkar, 2016) trains every candidate for a
few epochs, keeps the best ``1 / reduction`` of them, trains those
``reduction`` times longer, and so on. Its asynchronous form, ASHA (Li et al.,
2020, the rule of Optuna's ``SuccessiveHalvingPruner``), decides as each trial
reaches a rung, against the values *seen at that rung so far*::

    rungs:        first, first * reduction, first * reduction**2, ...  (< max epochs)
    value at r:   the trial's lowest val_loss over epochs 1..r
    keep:         k = max(1, len(values) // reduction), values sorted ascending
                  (the trial's own value included); continue iff value <= values[k - 1]

"So far" depends on timing when trials run in parallel. Here candidates have
a fixed order 0, 1, 2, ... (the search's seeded design) and candidate ``i`` is
judged at rung ``r`` against exactly the candidates ``j < i``: once each of them
is *settled* at ``r`` (it has reported epoch ``r``, or it has ended), the
decision is the one a sequential search, running 0, 1, 2, ... one at a time,
would take. By induction on ``i`` every candidate's whole trajectory (epochs
trained, values, pruned or not) is the sequential one, whoever runs it and
whenever.

A candidate that ended before rung ``r`` competes there only if it completed
(early stopping ran out of patience: its final best is its value at ``r``); a
pruned or diverged one does not. This module is pure: it decides from
numbers; :mod:`dnnlab.search` reads them from the study and waits.

Jamieson, K., & Talwalkar, A. (2016). Non-stochastic best arm identification
and hyperparameter optimization. AISTATS. Li, L., et al. (2020). A system for
massively parallel hyperparameter tuning. MLSys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dnnlab.config import positive_int
from dnnlab.errors import ConfigError

COMPLETE, PRUNED, DIVERGED = "complete", "pruned", "diverged"


def rungs(first: int, reduction: int, max_epochs: int) -> tuple[int, ...]:
    """The epochs at which trials are judged: ``first * reduction**k`` below ``max_epochs``.

    A trial that reaches ``max_epochs`` is finished, so no rung sits there.
    """
    positive_int("first rung", first)
    positive_int("max epochs", max_epochs)
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 2:
        raise ConfigError(f"reduction must be a whole number >= 2, got {reduction!r}")
    out, epoch = [], first
    while epoch < max_epochs:
        out.append(epoch)
        epoch *= reduction
    return tuple(out)


def value_at(values: Mapping[int, float], rung: int) -> float:
    """The lowest val_loss over epochs ``1..rung`` (``values`` maps epoch -> val_loss)."""
    return min(v for epoch, v in values.items() if epoch <= rung)


def survives(value: float, others: Sequence[float], reduction: int) -> bool:
    """ASHA's promotion rule: is ``value`` among the best ``max(1, n // reduction)`` of all n?

    ``others`` are the competitors' values at the same rung; ``value`` is
    counted among the ``n = len(others) + 1``. Ties keep the trial.
    """
    ranked = sorted([*others, value])
    keep = max(1, len(ranked) // reduction)
    return value <= ranked[keep - 1]


@dataclass(frozen=True)
class Standing:
    """What the study holds about one candidate: its reported values, and its outcome if ended.

    ``values`` maps each epoch reported so far to its val_loss; ``outcome`` is
    ``None`` while the candidate trains, else ``"complete"``, ``"pruned"`` or
    ``"diverged"``.
    """

    values: Mapping[int, float] = field(default_factory=dict)
    outcome: str | None = None

    def settled(self, rung: int) -> bool:
        """Nothing it does from now on can change its part in a decision at ``rung``."""
        return self.outcome is not None or max(self.values, default=0) >= rung

    def value_at(self, rung: int) -> float | None:
        """Its value as a competitor at ``rung``, or ``None`` if it does not compete there."""
        if max(self.values, default=0) >= rung:
            return value_at(self.values, rung)
        if self.outcome == COMPLETE and self.values:
            return min(self.values.values())
        return None


def decide(
    values: Mapping[int, float], rung: int, before: Sequence[Standing], reduction: int
) -> bool | None:
    """Whether a candidate with ``values`` goes on past ``rung``; ``None`` until it can be known.

    ``before`` are the standings of every candidate ahead of it in the design's
    order. The answer waits (``None``) until each of them is settled at ``rung``,
    and then is exactly what a sequential search would decide.
    """
    if not all(s.settled(rung) for s in before):
        return None
    others = [v for v in (s.value_at(rung) for s in before) if v is not None]
    return survives(value_at(values, rung), others, reduction)


def sequential_epochs(
    ranks: Sequence[float], epochs: int, first: int, reduction: int, max_epochs: int
) -> int:
    """Epochs a sequential search trains when its candidates rank ``ranks`` at every rung.

    A planning aid for a budget: candidate ``i`` has the value ``ranks[i]``
    (lower is better) at every rung, trains ``epochs`` epochs when no rung
    stops it (early stopping ends it there), and stops at the first rung below
    ``epochs`` where :func:`decide` prunes it.
    """
    before: list[Standing] = []
    total = 0
    for value in ranks:
        values: dict[int, float] = {}
        outcome, trained = COMPLETE, epochs
        for rung in (r for r in rungs(first, reduction, max_epochs) if r < epochs):
            values[rung] = value
            if not decide(values, rung, before, reduction):
                outcome, trained = PRUNED, rung
                break
        if outcome == COMPLETE:
            values[epochs] = value
        before.append(Standing(values=values, outcome=outcome))
        total += trained
    return total
