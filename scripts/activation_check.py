"""which-activation on real CIFAR-10 at a small setting: its tuned arms, in minutes.

    python scripts/activation_check.py OUT --data-dir DIR

The question's own settings (each activation's Nadam rate searched on the first
seed, then its seeds trained to early stopping, at most 30 epochs, patience 5)
with the sizes cut: 2,000 training images, 2 seeds and no more from the seed
plan, 100 demo steps, 2-3 timing rounds. Prints each arm's candidates and the
rate chosen. A check that the path works on real data, not the study
(docs/verdicts.md, "Fair arms at a stated scope").
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from dnnlab.data import load_splits
from dnnlab.experiments import questions as qs
from dnnlab.experiments.questions import which_activation as act
from dnnlab.experiments.questions.common import subset

SMALL = dataclasses.replace(
    act.Settings(),
    data=subset(2000),
    seed_budget=2,
    demo_steps=100,
    timing_min_rounds=2,
    timing_max_rounds=3,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    qs.run_questions(
        args.out,
        ids=["which-activation"],
        seeds=2,
        settings={"which-activation": SMALL},
        load_splits=lambda config: load_splits(config, args.data_dir),
    )
    searches = qs.stored_measurements(args.out, "which-activation")["measurements"]["hidden"]
    for arm, record in searches["tuning"]["searches"].items():
        tried = ", ".join(f"{t['learning_rate']:g} {t['state']}" for t in record["trials"])
        print(f"{arm}: {tried}; chosen {record['chosen']:g}")


if __name__ == "__main__":
    main()
