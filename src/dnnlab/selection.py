"""How a search chooses among candidates whose validation losses lie within seed noise.

A search trains each candidate once, on one seed, and today takes the lowest
best validation loss. When two candidates are within seed noise of each other
that choice is a coin toss: run the same search on another machine (whose
floating-point sums part from this one's after a few epochs,
``docs/reproducibility.md``) or another seed and the other one wins. Two rules
settle a near tie, with ``margin`` the relative gap in best validation loss
below which two candidates count as tied:

- **keep the prior** (``keep_prior=True``): the winner replaces candidate 0
  (the prior: the book's rate, or 1cycle's range-test peak) only if its best
  validation loss is lower than the prior's by more than ``margin`` of the
  prior's; otherwise the prior is kept. Costs nothing.
- **more seeds for the finalists** (``extra_seeds=k``): every completed
  candidate within ``margin`` of the winner is a finalist; when there are two
  or more, each trains ``k`` more seeds and the lowest mean best validation
  loss over its ``1 + k`` seeds wins. Costs ``k`` full runs per finalist.

:func:`replay` runs a whole search from stored histories (its pruning is
:mod:`dnnlab.pruning`'s, on the search seed's histories) so the rules can be
compared on the same measured numbers (``scripts/search_noise.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dnnlab.config import positive_number
from dnnlab.errors import ConfigError
from dnnlab.pruning import COMPLETE, DIVERGED, PRUNED, Standing, decide, rungs


@dataclass(frozen=True)
class Rule:
    """A choice rule: ties within ``margin`` go to the prior, or to ``extra_seeds`` more seeds."""

    name: str
    margin: float = 0.0
    keep_prior: bool = False
    extra_seeds: int = 0

    def __post_init__(self) -> None:
        if self.margin:
            positive_number("margin", self.margin)
        if (
            isinstance(self.extra_seeds, bool)
            or not isinstance(self.extra_seeds, int)
            or (self.extra_seeds < 0)
        ):
            raise ConfigError(f"extra seeds must be a whole number >= 0, got {self.extra_seeds!r}")
        if self.keep_prior and self.extra_seeds:
            raise ConfigError("a rule keeps the prior or trains more seeds, not both")

    def says(self) -> str:
        """The rule in words."""
        if self.keep_prior:
            return (
                "the lowest best validation loss among completed candidates, unless it beats "
                f"candidate 0 (the prior) by {100 * self.margin:g}% of the prior's or less: "
                "then the prior"
            )
        if self.extra_seeds:
            return (
                f"completed candidates within {100 * self.margin:g}% of the lowest best "
                f"validation loss are finalists; with two or more, each trains "
                f"{self.extra_seeds} more seed(s) and the lowest mean over its seeds wins"
            )
        return "the lowest best validation loss among completed candidates"


#: Today's rule, for a search without a prior.
LOWEST = Rule("lowest")
#: The search's rule when candidate 0 is a prior (measured against the others in
#: docs/search.md, "Near ties"). 1%: the issue's two flips rested on gaps of 0.4% (SELU,
#: best val_loss 1.4517 vs 1.4572) and 0.6% (the baseline's candidate 0 on two machines,
#: 1.5008 vs 1.5103).
SEARCH_RULE = Rule("prior unless beaten by more than 1%", 0.01, keep_prior=True)


def choose(
    bests: Mapping[int, float], rule: Rule, more: Mapping[int, Sequence[float]] | None = None
) -> int | None:
    """The chosen candidate from completed candidates' best validation losses (``bests``).

    ``bests`` maps candidate index -> best val_loss on the search seed (only
    completed candidates; 0 is the prior). For a rule with ``extra_seeds``,
    ``more`` maps each finalist (:func:`finalists`) to its best val_loss on the
    extra seeds. ``None`` when nothing completed.
    """
    if not bests:
        return None
    winner = min(bests, key=lambda c: (bests[c], c))
    if rule.keep_prior:
        prior = bests.get(0)
        if winner != 0 and prior is not None and prior - bests[winner] <= rule.margin * prior:
            return 0
        return winner
    tied = finalists(bests, rule)
    if len(tied) < 2:
        return winner
    if more is None or any(len(more.get(c, ())) != rule.extra_seeds for c in tied):
        raise ConfigError(f"finalists {tied} need {rule.extra_seeds} more seed(s) each")
    means = {c: math.fsum([bests[c], *more[c]]) / (1 + rule.extra_seeds) for c in tied}
    return min(means, key=lambda c: (means[c], c))


def finalists(bests: Mapping[int, float], rule: Rule) -> list[int]:
    """Candidates within ``rule.margin`` of the lowest best val_loss (a rule with extra seeds)."""
    if not rule.extra_seeds or not bests:
        return []
    low = min(bests.values())
    return sorted(c for c, v in bests.items() if v <= low * (1 + rule.margin))


@dataclass(frozen=True)
class Replay:
    """A replayed search: its choice, its candidates' outcomes and the epochs it trained."""

    chosen: int | None
    outcomes: tuple[str, ...]
    epochs: int
    extra_epochs: int


def replay(
    histories: Sequence[Sequence[Sequence[float]]],
    rule: Rule,
    first_rung: int,
    reduction: int,
    max_epochs: int,
) -> Replay:
    """Run a search from stored histories: ``histories[c][k]`` = candidate c's val_loss per epoch
    on seed k (k = 0 the search seed; ``rule.extra_seeds`` more for the finalists).

    Candidate c is pruned at the first rung where :func:`dnnlab.pruning.decide`
    prunes it against candidates 0..c-1; a non-finite val_loss makes it diverged.
    ``epochs`` counts every epoch trained, the extra seeds' included
    (``extra_epochs``).
    """
    before: list[Standing] = []
    outcomes, bests, epochs = [], {}, 0
    for c, runs in enumerate(histories):
        losses = list(runs[0])
        values: dict[int, float] = {}
        outcome, trained = COMPLETE, len(losses)
        if not all(math.isfinite(v) for v in losses):
            outcome = DIVERGED
            trained = next(i for i, v in enumerate(losses) if not math.isfinite(v)) + 1
        for rung in (r for r in rungs(first_rung, reduction, max_epochs) if r < trained):
            values.update({e: losses[e - 1] for e in range(len(values) + 1, rung + 1)})
            if not decide(values, rung, before, reduction):
                outcome, trained = PRUNED, rung
                break
        values.update(
            {
                e: losses[e - 1]
                for e in range(len(values) + 1, trained + 1)
                if math.isfinite(losses[e - 1])
            }
        )
        before.append(Standing(values=values, outcome=outcome))
        outcomes.append(outcome)
        epochs += trained
        if outcome == COMPLETE:
            bests[c] = min(losses)
    extra = 0
    more = {}
    for c in finalists(bests, rule):
        runs = histories[c][1 : 1 + rule.extra_seeds]
        if len(runs) != rule.extra_seeds:
            raise ConfigError(
                f"candidate {c} has {len(runs)} extra seeds, the rule needs {rule.extra_seeds}"
            )
        more[c] = [min(r) for r in runs]
        extra += sum(len(r) for r in runs)
    if len(more) < 2:
        more, extra = {}, 0
    return Replay(choose(bests, rule, more or None), tuple(outcomes), epochs + extra, extra)
