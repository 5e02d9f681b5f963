"""The search's choice rules on known numbers: near ties, clear wins, finalists, replays."""

import math

import pytest

from dnnlab.errors import ConfigError
from dnnlab.selection import Rule, choose, finalists, replay

LOWEST = Rule("lowest")
PRIOR = Rule("prior", 0.01, keep_prior=True)
SEEDS = Rule("seeds", 0.01, extra_seeds=2)


@pytest.mark.parametrize(
    ("bests", "rule", "chosen"),
    [
        ({0: 1.4572, 1: 1.4517, 2: 1.60}, LOWEST, 1),  # today's rule takes a 0.4% gap
        ({0: 1.4572, 1: 1.4517, 2: 1.60}, PRIOR, 0),  # near tie: the prior stays
        ({0: 1.50, 1: 1.485, 2: 1.60}, PRIOR, 0),  # exactly 1%: still a tie
        ({0: 1.50, 1: 1.40, 2: 1.60}, PRIOR, 1),  # clear win: the winner
        ({0: 1.40, 1: 1.45}, PRIOR, 0),  # the prior itself lowest
        ({1: 1.45, 2: 1.44}, PRIOR, 2),  # no completed prior (diverged): the lowest
        ({}, PRIOR, None),
        ({0: 1.50, 1: 1.40}, SEEDS, 1),  # no tie: no extra seeds needed
    ],
)
def test_choose(bests, rule, chosen):
    assert choose(bests, rule) == chosen


def test_finalists_are_the_candidates_within_the_margin_of_the_lowest():
    bests = {0: 1.4572, 1: 1.4517, 2: 1.60, 3: 1.4670}
    assert finalists(bests, SEEDS) == [0, 1]
    assert finalists(bests, PRIOR) == []


def test_finalists_are_decided_by_their_mean_over_seeds():
    bests = {0: 1.4572, 1: 1.4517, 2: 1.60}
    # Candidate 1 led on the search seed by luck: on two more seeds the prior is lower.
    assert choose(bests, SEEDS, {0: [1.45, 1.44], 1: [1.47, 1.48]}) == 0
    assert choose(bests, SEEDS, {0: [1.47, 1.48], 1: [1.45, 1.44]}) == 1
    with pytest.raises(ConfigError, match="need 2 more seed"):
        choose(bests, SEEDS, {0: [1.45], 1: [1.47, 1.48]})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -0.1}, "margin"),
        ({"extra_seeds": -1}, "extra seeds"),
        ({"margin": 0.01, "keep_prior": True, "extra_seeds": 1}, "not both"),
    ],
)
def test_bad_rules_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Rule("bad", **kwargs)


def test_every_rule_says_what_it_does():
    assert all(rule.says() for rule in (LOWEST, PRIOR, SEEDS))
    assert "1%" in PRIOR.says() and "prior" in PRIOR.says()


def flat(value, epochs):
    return [value] * epochs


def test_replay_prunes_at_the_rungs_and_chooses_by_the_rule():
    # 3 candidates, 30 epochs, rungs 9 and 27 (x3, max 30). Candidate 1 is worse than the
    # prior at epoch 9: pruned there. Candidate 2 is 0.5% better throughout: completes.
    histories = [
        [flat(1.50, 30)],
        [flat(1.60, 30)],
        [flat(1.4925, 30)],
    ]
    today = replay(histories, LOWEST, 9, 3, 30)
    assert today.outcomes == ("complete", "pruned", "complete")
    assert today.epochs == 30 + 9 + 30 and today.extra_epochs == 0
    assert today.chosen == 2
    assert replay(histories, PRIOR, 9, 3, 30).chosen == 0


def test_replay_trains_the_finalists_extra_seeds_and_counts_them():
    histories = [
        [flat(1.50, 30), flat(1.49, 20), flat(1.48, 25)],
        [flat(1.60, 30), flat(1.60, 30), flat(1.60, 30)],
        [flat(1.4925, 30), flat(1.52, 10), flat(1.53, 12)],
    ]
    picked = replay(histories, SEEDS, 9, 3, 30)
    assert picked.chosen == 0  # 0's mean 1.49 beats 2's 1.514
    assert picked.extra_epochs == 20 + 25 + 10 + 12
    assert picked.epochs == 30 + 9 + 30 + picked.extra_epochs


def test_replay_marks_a_non_finite_candidate_diverged():
    histories = [[flat(1.50, 30)], [[1.45, 1.40, math.nan]]]
    picked = replay(histories, LOWEST, 9, 3, 30)
    assert picked.outcomes == ("complete", "diverged")
    assert picked.chosen == 0 and picked.epochs == 33
