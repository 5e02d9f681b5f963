"""Alpha dropout's rate searched with its learning rate; MC Dropout judged at the chosen rate.

    python scripts/dropout_rates.py --data-dir ../shared/datasets --out runs/dropout-rates
        [--rates 0.05 0.1 0.2 0.4] [--seeds 3] [--train-size N] [--epochs E] [--patience P]

A small grid of dropout rates (Géron tried 5% to 40%), each with its own
learning-rate search: the study's search (:data:`SEARCH_BUDGET`: the book's
5e-4 first, then 4 log-uniform over 1e-5 ... 0.1, successive halving from
epoch 9), on the first seed, never touching the test set. Budget: one search
per dropout rate, so ``len(rates)`` times one variant's search. The dropout
rate is then chosen among the searches' winners by :mod:`dnnlab.selection`'s
keep-the-prior rule (the prior: 10%, the exercise's rate), the chosen config is
trained at ``--seeds`` seeds, and MC Dropout (10 samples) is judged against
plain prediction of those models, paired by seed, with ``stats.compare``.
Everything is stored under ``OUT`` (the searches in ``OUT/lr-search.db``,
the table in ``OUT/result.json``); a killed run resumes its searches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PRIOR_RATE = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/dropout-rates")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--validation-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--margin", type=float, default=0.01)
    args = parser.parse_args()

    from dnnlab.config import variant_config
    from dnnlab.data import SplitCache
    from dnnlab.experiments.exercise8 import SEARCH_BUDGET
    from dnnlab.search import default_storage, search_learning_rate, train_in_process
    from dnnlab.selection import Rule, choose
    from dnnlab.stats import compare
    from dnnlab.train import train
    from dnnlab.uncertainty import evaluate_mc

    if PRIOR_RATE not in args.rates:
        raise SystemExit(f"--rates must include the prior {PRIOR_RATE}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = SplitCache(args.data_dir)
    sizes = dict(
        epochs=args.epochs,
        patience=args.patience,
        train_size=args.train_size,
        validation_size=args.validation_size,
    )
    searches = {}
    for rate in args.rates:
        base = variant_config("alpha-dropout", seed=42, dropout_rate=rate, **sizes)
        record = search_learning_rate(
            base,
            train_in_process(cache.loader(base.data)),
            default_storage(out),
            f"alpha-dropout-{rate:g}-{base.run_id}",
            SEARCH_BUDGET,
            start=[base.train.learning_rate],
            log=print,
        )
        best = min(
            (t["best_val_loss"] for t in record["trials"] if t["state"] == "complete"),
            default=None,
        )
        searches[rate] = {
            "learning_rate": record["chosen"],
            "best_val_loss": best,
            "epochs": record["cost"]["epochs"],
        }
        print(f"dropout {rate:g}: learning rate {record['chosen']}, best val_loss {best}")
    # Candidate 0 is the prior (10%); the others in the order given.
    order = [PRIOR_RATE, *(r for r in args.rates if r != PRIOR_RATE)]
    bests = {
        i: searches[r]["best_val_loss"]
        for i, r in enumerate(order)
        if searches[r]["best_val_loss"] is not None
    }
    rule = Rule("prior", args.margin, keep_prior=True)
    chosen = order[choose(bests, rule)]
    lr = searches[chosen]["learning_rate"]
    print(f"chosen: dropout {chosen:g} at learning rate {lr:g} ({rule.says()})")
    plain, mc = [], []
    for seed in range(42, 42 + args.seeds):
        config = variant_config("alpha-dropout", seed=seed, dropout_rate=chosen, lr=lr, **sizes)
        splits = cache(config.data)
        outcome = train(config, splits, verbose=0)
        scores = evaluate_mc(outcome.model, splits.x_test, splits.y_test, samples=10, seed=seed)
        plain.append(scores["plain"]["accuracy"])
        mc.append(scores["mc"]["accuracy"])
        print(f"seed {seed}: test accuracy plain {plain[-1]:.4f}, MC {mc[-1]:.4f}")
    verdict = compare(plain, mc, claim="greater", margin=0.01, paired=True)
    print(f"MC Dropout beats plain prediction: {verdict['verdict']} ({verdict['says']})")
    result = {
        "searches": {f"{r:g}": s for r, s in searches.items()},
        "rule": rule.says(),
        "chosen": {"dropout_rate": chosen, "learning_rate": lr},
        "plain": plain,
        "mc": mc,
        "mc_dropout": {k: verdict[k] for k in ("verdict", "rule", "says")},
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
