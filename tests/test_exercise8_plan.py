"""The study's work planned from what is stored (exercise8_plan), then done piece by piece."""

import pytest

from dnnlab import claims
from dnnlab.data import SplitCache
from dnnlab.experiments import exercise8_plan as plan
from dnnlab.experiments.exercise8 import Study, search_storage
from dnnlab.experiments.exercise8_worker import complete, do
from dnnlab.runs import execute

TINY = {"validation_size": 24, "epochs": 2, "depth": 2, "width": 8}


def _names(work):
    """Each piece of work as (kind, what): comparable, readable in a failure."""
    named = []
    for w in work:
        if isinstance(w, plan.Train):
            named.append(("train", tuple(c.run_id for c in w.configs)))
        elif isinstance(w, plan.RangeTest):
            named.append(("range test", w.trains))
        elif isinstance(w, plan.McDropout):
            named.append(("mc-dropout", w.run.config.run_id))
        else:
            named.append((type(w).__name__, None))
    return named


def _ids(study, variant, seeds):
    return [study.config(variant, s).run_id for s in seeds]


def test_the_work_left_is_planned_in_the_sequential_order_and_ends_complete(fake_root, tmp_path):
    out = tmp_path / "study"
    study = Study(variants=("baseline", "one-cycle"), seeds=2, lr="book", overrides=TINY,
                  seed_budget=None)  # fmt: skip
    url = search_storage(out, None)
    splits = SplitCache(fake_root, check_md5=False)
    found = plan.write_plan(out, study, None)
    # 1cycle's rate is the range test's peak: its runs wait for it, the baseline's do not
    assert _names(found.todo()) == [("range test", "one-cycle")] + [
        ("train", (run_id,)) for run_id in _ids(study, "baseline", (42, 43))
    ]
    assert found.plan(None)["runs"] == {"baseline": _ids(study, "baseline", (42, 43))}
    # a piece another live process holds is left alone: nothing done, nothing lost
    (out / "lr-find").mkdir()
    held = claims.acquire(out / "lr-find", "one-cycle")
    try:
        assert do(found.todo()[0], out, study, splits, url, verbose=0) is False
    finally:
        held.abandon(keep=False)
    assert do(found.todo()[0], out, study, splits, url, verbose=0) is True
    found = plan.survey(study, out, url)
    peak = found.entries["one-cycle"]["range_test"]["peak"]
    assert found.rates["one-cycle"] == {"lr": peak}
    cycle = [study.config("one-cycle", s, lr=peak).run_id for s in (42, 43)]
    base = _ids(study, "baseline", (42, 43))
    # seeds outer, configs inner, as a sequential study trains them
    assert _names(found.todo()) == [("train", (r,)) for r in (base[0], cycle[0], base[1], cycle[1])]
    while left := plan.survey(study, out, url).todo():
        assert do(left[0], out, study, splits, url, verbose=0)
    assert complete(out, study, url)
    found = plan.survey(study, out, url)
    assert [r.config.run_id for r in found.runs()] == [base[0], cycle[0], base[1], cycle[1]]


def test_together_plans_each_configs_missing_seeds_as_one_piece(fake_root, tmp_path):
    out = tmp_path / "study"
    study = Study(variants=("baseline", "baseline-std"), seeds=3, lr="book", overrides=TINY,
                  together=True, seed_budget=None)  # fmt: skip
    splits = SplitCache(fake_root, check_md5=False)
    execute(study.config("baseline", 43), splits.loader(study.config("baseline").data), out,
            verbose=0)  # fmt: skip
    found = plan.survey(study, out, search_storage(out, None))
    assert _names(found.todo()) == [
        ("train", tuple(_ids(study, "baseline", (42, 44)))),
        ("train", tuple(_ids(study, "baseline-std", (42, 43, 44)))),
    ]


def test_a_stored_run_without_its_mc_dropout_is_planned_for_it(fake_root, tmp_path):
    out = tmp_path / "study"
    study = Study(variants=("alpha-dropout", "mc-dropout"), lr="book", overrides=TINY,
                  samples=2, seed_budget=None)  # fmt: skip
    config = study.config("alpha-dropout")
    splits = SplitCache(fake_root, check_md5=False)
    execute(config, splits.loader(config.data), out, verbose=0)  # trained, as if killed before MC
    url = search_storage(out, None)
    found = plan.survey(study, out, url)
    assert _names(found.todo()) == [("mc-dropout", config.run_id)]
    assert not complete(out, study, url)
    assert do(found.todo()[0], out, study, splits, url) is True
    assert plan.survey(study, out, url).todo() == []
    assert plan.survey(study, out, url).runs()[0].summary["mc_samples"] == 2


def test_a_search_study_plans_its_search_before_any_run(tmp_path):
    study = Study(variants=("baseline",), overrides=TINY, seed_budget=None)
    found = plan.survey(study, tmp_path, search_storage(tmp_path, None))
    [work] = found.todo()
    assert isinstance(work, plan.SearchPart) and work.search.trains == "baseline"
    assert found.rates == {"baseline": None} and found.plan(None)["runs"] == {}


def test_do_refuses_what_is_not_work(tmp_path):
    with pytest.raises(TypeError, match="not a piece of exercise 8's work"):
        do("train everything", tmp_path, Study(lr="book"), None, "")
