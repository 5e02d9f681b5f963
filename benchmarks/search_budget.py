"""What a learning-rate search budget costs against a study's training, in epochs.

For each number of candidates, the epochs the searches of exercise 8's four
constant-rate variants train (:func:`dnnlab.pruning.sequential_epochs`),
averaged over every order of the candidates' ranks (the same at every rung),
in two models: the book's rate (candidate 0) ranks first, or any order is
as likely. ``E`` per variant is where early stopping ended its runs in the
book-rate study (README: 52, 45, 33, 27 epochs); the study trains 3 seeds of
each, and 1cycle's searched cycles cost what its 3 runs do.

    python benchmarks/search_budget.py [--first-rung 9] [--seeds 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics

from dnnlab.pruning import sequential_epochs

EPOCHS = {"baseline": 52, "batchnorm": 45, "selu": 33, "alpha-dropout": 27}  # README study
ONE_CYCLE = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-rung", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    study = args.seeds * (sum(EPOCHS.values()) + ONE_CYCLE)
    print(f"study: {study} epochs ({args.seeds} seeds); rungs from epoch {args.first_rung}, x3")
    print("| candidates | book's rate first | any order | worst | × study (book first – any) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for trials in range(4, 9):
        orders = list(itertools.permutations(range(trials)))
        first = any_order = worst = 0.0
        for e in EPOCHS.values():
            costs = [sequential_epochs(o, e, args.first_rung, 3, 100) for o in orders]
            first += statistics.mean(c for c, o in zip(costs, orders, strict=True) if o[0] == 0)
            any_order += statistics.mean(costs)
            worst += max(costs)
        cycles = max(2, (trials + 1) // 2) * ONE_CYCLE
        first, any_order, worst = first + cycles, any_order + cycles, worst + cycles
        print(
            f"| {trials} | {first:.0f} | {any_order:.0f} | {worst:.0f} | "
            f"{first / study:.2f} – {any_order / study:.2f} |"
        )


if __name__ == "__main__":
    main()
