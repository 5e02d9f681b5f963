"""The questions framework (measure -> judge -> tell -> draw) and same-init, on known cases."""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from dnnlab import ConfigError, DataConfig, TrainConfig, data
from dnnlab.experiments import questions
from dnnlab.experiments.questions import Claim, Context, Question, answer, same_init, select
from dnnlab.experiments.questions.common import distinct_neurons
from dnnlab.lab import question_blocks, short_answer


def test_a_layer_with_identical_columns_counts_as_one_neuron():
    assert distinct_neurons(np.full((5, 7), 0.3)) == 1
    kernel = np.arange(12.0).reshape(3, 4)
    assert distinct_neurons(kernel) == 4
    kernel[:, 2] = kernel[:, 0]
    assert distinct_neurons(kernel) == 3
    kernel[:, 3] = kernel[:, 1] + 1e-9  # float noise far below rtol x max|w|
    assert distinct_neurons(kernel) == 2


@dataclass(frozen=True)
class ToySettings:
    size: int = 3


def _question(calls, verdict="supported", claim_id="toy/claim"):
    def measure(ctx, settings):
        calls.append(("measure", settings.size))
        return {"values": np.arange(settings.size), "x": float("nan"), "scale": np.float32(0.5)}

    def judge(m):
        calls.append(("judge",))
        return [Claim(claim_id, "a claim", verdict, "the rule", {"n": len(m["values"])})]

    def tell(m, claims):
        return f"{len(m['values'])} values: {claims[0].verdict}"

    def draw(m, folder):
        (folder / "f.png").write_bytes(b"png")
        return ["f.png"]

    return Question("toy", "Is it?", "none", measure, judge, tell, draw, ToySettings())


def _context(folder):
    return Context(folder=folder, load_splits=lambda config: None)


def test_answer_stores_measurements_and_result_and_reuses_them(tmp_path):
    calls = []
    record = answer(_question(calls), tmp_path, _context)
    folder = tmp_path / "questions" / "toy"
    assert json.loads((folder / "result.json").read_text()) == record
    assert record["claims"] == [
        {
            "id": "toy/claim",
            "text": "a claim",
            "verdict": "supported",
            "rule": "the rule",
            "evidence": {"n": 3},
            "source": None,
            "p_value": None,
        }
    ]
    assert record["facts"] == []
    assert record["answer"] == "3 values: supported"
    stored = json.loads((folder / "measurements.json").read_text())
    assert stored["measurements"] == {"values": [0, 1, 2], "x": None, "scale": 0.5}
    assert stored["settings"] == {"size": 3}
    assert (folder / "f.png").exists()
    assert answer(_question(calls), tmp_path, _context) == record
    assert calls == [("measure", 3), ("judge",)]
    answer(_question(calls), tmp_path, _context, force=True, settings=ToySettings(size=4))
    assert calls[-2:] == [("measure", 4), ("judge",)]
    assert sorted(p.name for p in (tmp_path / "questions").iterdir()) == ["toy"]


def test_rejudge_recomputes_verdicts_from_stored_numbers_without_measuring(tmp_path):
    calls = []
    answer(_question(calls), tmp_path, _context)
    again = answer(_question(calls, verdict="refuted"), tmp_path, _context, rejudge=True)
    assert [c[0] for c in calls] == ["measure", "judge", "judge"]
    assert again["claims"][0]["verdict"] == "refuted"
    assert again["answer"] == "3 values: refuted"


def test_measurements_made_with_other_settings_seeds_or_sizes_are_measured_again(
    tmp_path, monkeypatch
):
    calls, lines = [], []
    monkeypatch.setattr(questions, "registry", lambda: {"toy": _question(calls)})

    def run(**kw):
        return questions.run_questions(
            tmp_path, load_splits=lambda c: None, progress=lines.append, **kw
        )

    run(seeds=3)
    run(seeds=3)  # the same protocol: reused
    assert [c[0] for c in calls] == ["measure", "judge"]
    run(seeds=3, settings={"toy": ToySettings(size=4)})
    assert calls[-2:] == [("measure", 4), ("judge",)]
    assert "made with other settings" in lines[-2] and "measured in" in lines[-1]
    run(seeds=3, settings={"toy": ToySettings(size=4)})
    run(seeds=5, settings={"toy": ToySettings(size=4)})
    run(seeds=5, settings={"toy": ToySettings(size=4)}, data_sizes={"train_size": 50})
    measured = [c for c in calls if c[0] == "measure"]
    assert measured == [("measure", 3), ("measure", 4), ("measure", 4), ("measure", 4)]
    stored = questions.stored_measurements(tmp_path, "toy")
    assert stored["seeds"] == 5 and stored["data_sizes"] == {"train_size": 50}
    run(seeds=3, rejudge=True)  # a rejudge never measures, whatever the settings
    assert calls[-1] == ("judge",) and len([c for c in calls if c[0] == "measure"]) == 4


def test_retime_takes_the_timings_again_keeps_the_trained_numbers_and_judges(tmp_path, monkeypatch):
    calls, lines = [], []

    def retime(ctx, settings, m):
        calls.append(("retime", ctx.folder.name))
        return {**m, "scale": 2.0}

    toy = dataclasses.replace(_question(calls), retime=retime)
    monkeypatch.setattr(questions, "registry", lambda: {"toy": toy})

    def run(**kw):
        return questions.run_questions(
            tmp_path, load_splits=lambda c: None, progress=lines.append, **kw
        )

    run(retime=True)  # nothing stored yet: said, nothing measured
    assert calls == [] and "no stored measurements to retime" in lines[-1]
    run()
    run(retime=True)
    result = questions.stored(tmp_path, "toy")
    assert calls == [("measure", 3), ("judge",), ("retime", "toy"), ("judge",)]
    stored = questions.stored_measurements(tmp_path, "toy")
    assert stored["measurements"] == {"values": [0, 1, 2], "x": None, "scale": 2.0}
    assert stored["retimed"]["seconds"] >= 0 and lines[-1].startswith("toy (retimed in")
    assert result["claims"][0]["verdict"] == "supported"
    with pytest.raises(ConfigError, match="no measurements stored with these settings"):
        questions.retime_question(toy, tmp_path, _context(tmp_path), ToySettings(size=5))
    monkeypatch.setattr(questions, "registry", lambda: {"toy": _question(calls)})
    run(retime=True)
    assert "times nothing" in lines[-1] and calls[-2:] == [("retime", "toy"), ("judge",)]


@dataclasses.dataclass(frozen=True)
class TimedToySettings:
    size: int = 3
    rounds: int = 4  # read only by the timings


def test_other_timing_settings_time_again_and_keep_the_trained_numbers(tmp_path, monkeypatch):
    calls, lines = [], []

    def retime(ctx, settings, m):
        calls.append(("retime", settings.rounds))
        return {**m, "scale": float(settings.rounds)}

    toy = dataclasses.replace(
        _question(calls), retime=retime, settings=TimedToySettings(), timing_settings=("rounds",)
    )
    monkeypatch.setattr(questions, "registry", lambda: {"toy": toy})

    def run(**kw):
        return questions.run_questions(
            tmp_path, load_splits=lambda c: None, progress=lines.append, **kw
        )

    run()
    run(settings={"toy": TimedToySettings(rounds=6)})  # timing settings alone: timed again
    assert calls == [("measure", 3), ("judge",), ("retime", 6), ("judge",)]
    assert "other timing settings" in lines[-2] and lines[-1].startswith("toy (retimed in")
    stored = questions.stored_measurements(tmp_path, "toy")
    assert stored["settings"] == {"size": 3, "rounds": 6} and stored["measurements"]["scale"] == 6
    run(settings={"toy": TimedToySettings(rounds=6)})  # now the same protocol: reused
    assert len(calls) == 4
    run(settings={"toy": TimedToySettings(size=4, rounds=6)})  # a trained setting: measured
    assert calls[-2:] == [("measure", 4), ("judge",)]
    # --retime on measurements of other timing settings times them with this run's
    run(retime=True, settings={"toy": TimedToySettings(size=4)})
    assert calls[-2:] == [("retime", 4), ("judge",)]
    assert questions.stored_measurements(tmp_path, "toy")["settings"] == {"size": 4, "rounds": 4}


def test_a_claim_needs_one_of_three_verdicts():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim("toy/x", "x", "true", "rule", {})


def test_claim_ids_must_name_their_question(tmp_path):
    with pytest.raises(ValueError, match="must start with toy/"):
        answer(_question([], claim_id="other/claim"), tmp_path, _context)
    assert questions.stored(tmp_path, "toy") is None


def test_a_result_of_an_older_format_is_measured_again(tmp_path):
    folder = tmp_path / "questions" / "toy"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"id": "toy", "claims": []}))
    calls = []
    record = answer(_question(calls), tmp_path, _context)
    assert calls[0] == ("measure", 3)
    assert record["format"] == questions.FORMAT


def test_unknown_question_ids_are_a_clear_error():
    with pytest.raises(ConfigError, match="unknown question nope; choose from: glorot-he"):
        select(["nope"])


def test_report_section_shows_each_claim_with_its_verdict_and_rule(tmp_path):
    question = _question([])
    question = Question("same-init", *list(question.__dict__.values())[1:])
    answer(
        Question(
            "same-init",
            "q",
            "d",
            question.measure,
            lambda m: [
                Claim(
                    "same-init/c",
                    "a claim",
                    "inconclusive",
                    "the rule",
                    {"n": 3, "acc": 0.41234, "per_seed": [[1, 2], [3, 4]]},
                )
            ],
            question.tell,
            question.draw,
            question.settings,
        ),
        tmp_path,
        _context,
    )
    glance, blocks = question_blocks(tmp_path)
    assert glance == [("same-init", "q", "1 inconclusive", "3 values: inconclusive", "q-same-init")]
    texts = [getattr(b, "text", None) for b in blocks]
    assert "**inconclusive** — a claim. Rule: the rule." in texts
    assert "Evidence: n: 3; acc: 0.4123." in texts  # the nested list is folded away
    [raw] = [b for b in blocks if type(b).__name__ == "Details"]
    assert json.loads(raw.text)["per_seed"] == [[1, 2], [3, 4]]


def test_same_init_end_to_end_on_fake_data(fake_root, tmp_path):
    def load(config):
        return data.load_splits(config, fake_root, check_md5=False, download=False)

    def context(folder):
        return Context(folder=folder, load_splits=load, seeds=2)

    settings = same_init.Settings(
        train=TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16),
        data=DataConfig(validation_size=24, standardize=True),
    )
    record = answer(same_init.QUESTION, tmp_path, context, settings=settings)
    claims = {c["id"]: c for c in record["claims"]}
    facts = {f["id"]: f for f in record["facts"]}
    identical = facts["same-init/identical-neurons"]  # by construction: a checked fact
    assert identical["holds"] is True and identical["outcome"] == "holds"
    assert identical["evidence"]["distinct_neurons_per_layer_same_init"] == [[1, 1, 1, 1]] * 2
    assert all(min(c) > 1 for c in identical["evidence"]["distinct_neurons_per_layer_he_init"])
    assert claims["same-init/worse-accuracy"]["verdict"] in ("supported", "refuted", "inconclusive")
    assert (tmp_path / "questions" / "same-init" / "same_init.png").stat().st_size > 1000


def _same_init_numbers(same_counts, he_counts, acc_same, acc_he):
    def rows(counts, acc):
        return [
            {
                "seed": 42 + i,
                "status": "finished",
                "distinct_neurons": c,
                "test_accuracy": a,
                "val_accuracy": [a],
            }
            for i, (c, a) in enumerate(zip(counts, acc, strict=True))
        ]

    return {
        "width": 4,
        "depth": 2,
        "epochs": 1,
        "same": rows(same_counts, acc_same),
        "he": rows(he_counts, acc_he),
    }


@pytest.mark.parametrize(
    ("same", "he", "expected"),
    [
        ([[1, 1]] * 3, [[4, 4]] * 3, True),
        ([[1, 2]] + [[1, 1]] * 2, [[4, 4]] * 3, False),
        ([[1, 1]] * 3, [[4, 1]] * 3, None),  # the control cannot tell neurons apart
    ],
)
def test_same_init_identical_neurons_check(same, he, expected):
    m = _same_init_numbers(same, he, [0.2, 0.21, 0.19], [0.4, 0.41, 0.42])
    facts = {c.id: c for c in same_init.judge(m)}
    assert facts["same-init/identical-neurons"].holds is expected
    assert same_init.tell(m, list(facts.values()))


@pytest.mark.parametrize(
    ("acc_same", "acc_he", "expected"),
    [
        ([0.20, 0.21, 0.19], [0.40, 0.42, 0.41], "supported"),  # He clearly better
        ([0.40, 0.42, 0.41], [0.20, 0.21, 0.19], "refuted"),  # He clearly worse
        ([0.400, 0.401, 0.402], [0.401, 0.4005, 0.4022], "refuted"),  # equivalent within 1 pt
        ([0.40, 0.42, 0.41], [0.41, 0.40, 0.43], "inconclusive"),  # noisy, small gap
        ([0.40], [0.41], "inconclusive"),  # one seed: no test
    ],
)
def test_same_init_worse_accuracy_rule(acc_same, acc_he, expected):
    n = len(acc_same)
    m = _same_init_numbers([[1, 1]] * n, [[4, 4]] * n, acc_same, acc_he)
    claims = {c.id: c.verdict for c in same_init.judge(m) if isinstance(c, Claim)}
    assert claims["same-init/worse-accuracy"] == expected
    assert same_init.tell(m, same_init.judge(m))


def test_the_short_answer_is_the_first_sentence_without_asides():
    answer_text = (
        "They fix the unstable signal (every ratio from layer 2 (fan-in 100) to 20). "
        "With N(0, 1) weights it grows 1.8e+15x."
    )
    assert (
        short_answer(answer_text)
        == "They fix the unstable signal. With N(0, 1) weights it grows 1.8e+15x."
    )
    assert short_answer(answer_text, at_least=10) == "They fix the unstable signal."
    assert short_answer("Yes: 0.5 vs 0.3 (p = 0.01)") == "Yes: 0.5 vs 0.3"
    assert short_answer("No. The neurons stay identical: 1 of 64. More.") == (
        "No. The neurons stay identical: 1 of 64."
    )


def test_seeds_by_pilot_runs_the_pilot_then_the_seeds_its_spread_asks_for(tmp_path):
    from dnnlab.experiments.questions.common import FIRST_SEED, seeds_by_pilot
    from dnnlab.stats import plan_seeds

    spread = {FIRST_SEED + i: d for i, d in enumerate([0.004, -0.006, 0.011] + [0.0] * 60)}
    ran = []

    def run_seeds(seed_list):
        ran.extend(seed_list)
        return [{"seed": seed, "d": spread[seed]} for seed in seed_list]

    def differences(rows):
        return [r["d"] for r in rows]

    ctx = Context(folder=tmp_path, load_splits=lambda config: None, seeds=3)
    rows, plan = seeds_by_pilot(ctx, run_seeds, differences, margin=0.01, claim="equal", budget=40)
    expected = plan_seeds([0.004, -0.006, 0.011], margin=0.01, claim="equal", budget=40)
    assert plan == expected and plan["run"] > 3 and not plan["capped"]
    assert ran == [r["seed"] for r in rows] == list(range(FIRST_SEED, FIRST_SEED + plan["run"]))
    ran.clear()
    rows, plan = seeds_by_pilot(ctx, run_seeds, differences, margin=0.01, claim="equal", budget=5)
    assert len(rows) == 5 and plan["capped"]
    one = Context(folder=tmp_path, load_splits=lambda config: None, seeds=1)
    rows, plan = seeds_by_pilot(one, run_seeds, differences, margin=0.01, claim="equal", budget=9)
    assert len(rows) == 1 and "fewer than 2" in plan["reason"]


def _answered(tmp_path, qid, findings):
    question = _question([])
    q = Question(
        qid,
        "q",
        "d",
        question.measure,
        lambda m: findings,
        question.tell,
        question.draw,
        question.settings,
    )
    return answer(q, tmp_path, _context)


def test_facts_are_stored_and_shown_apart_from_the_claims(tmp_path):
    from dnnlab.experiments.questions import Fact

    record = _answered(
        tmp_path,
        "same-init",
        [
            Claim("same-init/c", "a claim", "supported", "the rule", {"n": 3}, 'a.txt: "x"'),
            Fact("same-init/f", "a fact", True, "the formula", "the probe", {"slope": 1.0}),
        ],
    )
    assert [c["id"] for c in record["claims"]] == ["same-init/c"]
    assert record["facts"] == [
        {
            "id": "same-init/f",
            "text": "a fact",
            "holds": True,
            "why": "the formula",
            "check": "the probe",
            "evidence": {"slope": 1.0},
            "outcome": "holds",
        }
    ]
    glance, blocks = question_blocks(tmp_path)
    assert glance[0][2] == "1 supported"  # facts are not counted among the verdicts
    texts = [getattr(b, "text", "") for b in blocks]
    assert any('Threshold from: a.txt: "x".' in t for t in texts)
    assert any(t.startswith("*fact, holds* — a fact. Why it is fixed: the formula.") for t in texts)


def test_false_discoveries_are_controlled_over_every_stored_result(tmp_path):
    _answered(
        tmp_path,
        "same-init",
        [
            Claim("same-init/a", "a", "supported", "r", {}, None, 0.01),
            Claim("same-init/b", "b", "refuted", "r", {}, None, 0.04),
        ],
    )
    _answered(
        tmp_path,
        "zero-bias",
        [
            Claim("zero-bias/c", "c", "inconclusive", "r", {}, None, 0.5),
            Claim("zero-bias/d", "d", "supported", "r", {}),
        ],
    )
    assert questions.control_discoveries(tmp_path) == 3
    first = questions.stored(tmp_path, "same-init")["claims"]
    assert [c["verdict"] for c in first] == ["supported", "inconclusive"]  # 0.03, 0.06
    assert first[1]["verdict_unadjusted"] == "refuted" and first[1]["p_adjusted"] == 0.06
    second = questions.stored(tmp_path, "zero-bias")["claims"]
    assert [c.get("p_adjusted") for c in second] == [0.5, None]
    questions.control_discoveries(tmp_path)  # again: the same, from the own verdicts
    assert questions.stored(tmp_path, "same-init")["claims"] == first


def _fake_context(folder, fake_root):
    """A question context in ``folder`` on the tests' fake CIFAR-10."""
    return Context(
        folder=folder,
        load_splits=lambda c: data.load_splits(c, fake_root, check_md5=False, download=False),
    )


def test_fit_many_all_trains_a_searchs_candidates_as_one_program(tmp_path, fake_root, monkeypatch):
    import dnnlab.many
    from dnnlab import ModelConfig
    from dnnlab.experiments.questions import common
    from dnnlab.search import Budget

    grouped = []
    real_many = dnnlab.many.train_many

    def spy_many(configs, splits, **kw):
        grouped.append((len(configs), kw.get("evaluate_test", True)))
        return real_many(configs, splits, **kw)

    monkeypatch.setattr(dnnlab.many, "train_many", spy_many)
    monkeypatch.setattr(common, "FIT_MANY", "all")
    ctx = _fake_context(tmp_path, fake_root)
    arm = {
        "model": ModelConfig(depth=2, width=8),
        "train_config": TrainConfig(learning_rate=1e-3, epochs=2, batch_size=16),
        "data": DataConfig(validation_size=24),
        "budget": Budget(trials=2, first_rung=1, low=1e-4, high=1e-1),
    }
    common.tuned_fits(ctx, "relu", seed_list=[common.FIRST_SEED], **arm)
    assert (2, False) in grouped  # both candidates in one program, no test set
    monkeypatch.setattr(common, "FIT_MANY", "1")
    with pytest.raises(ConfigError, match="DNNLAB_FIT_MANY='1': set it to one of seeds, all, 0"):
        common.tuned_fits(ctx, "relu", seed_list=[common.FIRST_SEED], **arm)


def test_the_kept_candidate_is_the_first_seeds_run_trained_again_to_the_bit(
    tmp_path, fake_root, monkeypatch
):
    """The first seed's run kept from the search equals that run trained again, one by one
    (``DNNLAB_REUSE_CANDIDATE=0 DNNLAB_FIT_MANY=0``), and equals it trained alone when the
    search is read back from the folder (a resumed question); the other seeds are unchanged."""
    from dnnlab import ModelConfig
    from dnnlab.experiments.questions import common
    from dnnlab.runs import TIMING_FIELDS
    from dnnlab.search import Budget, design

    arm = {
        "model": ModelConfig(depth=2, width=8),
        "train_config": TrainConfig(learning_rate=1e-3, epochs=3, patience=2, batch_size=16),
        "data": DataConfig(validation_size=24),
        "budget": Budget(trials=3, first_rung=2, low=1e-4, high=1e-1),
        "seed_list": [common.FIRST_SEED, common.FIRST_SEED + 1],
    }

    def tuned(folder):
        return common.tuned_fits(_fake_context(folder, fake_root), "relu", **arm)

    def numbers(outcome):
        rows = [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in outcome.history]
        return rows, outcome.summary["test_loss"], outcome.summary["test_accuracy"]

    monkeypatch.setattr(common, "FIT_MANY", "0")
    kept, record = tuned(tmp_path / "kept")
    resumed, again = tuned(tmp_path / "kept")  # the search read back: nothing kept in memory
    monkeypatch.setattr(design, "REUSE_CANDIDATE", False)
    trained, other = tuned(tmp_path / "trained")
    assert record["chosen"] == again["chosen"] == other["chosen"]
    assert "trained_as" in kept[0].summary
    assert "trained_as" not in resumed[0].summary and "trained_as" not in trained[0].summary
    assert kept[0].summary["test_accuracy"] is not None
    for a, b, c in zip(kept, resumed, trained, strict=True):
        assert numbers(a) == numbers(b) == numbers(c)


def test_a_reads_only_hook_keeps_the_candidate_and_sees_each_fresh_model(
    tmp_path, fake_root, monkeypatch
):
    """With a hook that only reads (elu-vs-relu's probe) the candidate is kept too, and the
    hook sees seed 42's fresh model as when the run trains again; a marked hook that writes
    is a one-line error."""
    from dnnlab import ModelConfig, programs
    from dnnlab.experiments.questions import common
    from dnnlab.models import LOGITS
    from dnnlab.search import Budget, design

    arm = {
        "model": ModelConfig(depth=2, width=8),
        "train_config": TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16),
        "data": DataConfig(validation_size=24),
        "budget": Budget(trials=2, first_rung=1, low=1e-4, high=1e-1),
        "seed_list": [common.FIRST_SEED, common.FIRST_SEED + 1],
    }

    def tuned(folder, hook):
        return common.tuned_fits(_fake_context(folder, fake_root), "relu", prepare=hook, **arm)[0]

    def probe(seen):
        @programs.reads_only
        def look(seed, model):
            seen[seed] = [np.array(w) for w in model.get_weights()]

        return look

    seen_kept, seen_again = {}, {}
    kept = tuned(tmp_path / "kept", probe(seen_kept))
    monkeypatch.setattr(design, "REUSE_CANDIDATE", False)
    again = tuned(tmp_path / "again", probe(seen_again))
    assert "trained_as" in kept[0].summary and "trained_as" not in again[0].summary
    assert sorted(seen_kept) == sorted(seen_again) == arm["seed_list"]
    for seed in arm["seed_list"]:
        assert all(
            np.array_equal(a, b) for a, b in zip(seen_kept[seed], seen_again[seed], strict=True)
        )
    monkeypatch.setattr(design, "REUSE_CANDIDATE", True)

    @programs.reads_only
    def writes(seed, model):
        bias = model.get_layer(LOGITS).bias
        bias.assign(np.ones(bias.shape, "float32"))

    with pytest.raises(ConfigError, match="marked reads_only changed the model's weights"):
        tuned(tmp_path / "writes", writes)


def test_data_sizes_replace_every_questions_own_and_are_stored(tmp_path):
    seen = []
    ctx = Context(tmp_path, lambda config: seen.append(config), data_sizes={"train_size": 50})
    ctx.load_splits(DataConfig(validation_size=5000, train_size=10_000))
    assert seen == [DataConfig(validation_size=5000, train_size=50)]
    with pytest.raises(ConfigError, match="train size"):
        Context(tmp_path, seen.append, data_sizes={"train_size": 0}).load_splits(DataConfig())


def test_tuned_fits_picks_a_rate_by_validation_loss_and_never_evaluates_the_test_set(
    tmp_path, fake_root, monkeypatch
):
    """The arm's search runs on the first seed without the test set; its record is stored
    in the context's folder, so a second call (more seeds) trains no candidate again."""
    import dnnlab.many
    import dnnlab.train
    from dnnlab import ModelConfig
    from dnnlab.experiments.questions import common
    from dnnlab.experiments.questions.common import FIRST_SEED, tuned_fits
    from dnnlab.search import Budget
    from dnnlab.selection import SEARCH_RULE, choose

    calls = []
    real_train, real_many = dnnlab.train.train, dnnlab.many.train_many

    def spy_train(config, splits, **kw):
        calls.append(("one", config.seed, config.train.learning_rate, kw["evaluate_test"]))
        return real_train(config, splits, **kw)

    def spy_many(configs, splits, **kw):
        for c in configs:
            calls.append(("many", c.seed, c.train.learning_rate, kw.get("evaluate_test", True)))
        return real_many(configs, splits, **kw)

    monkeypatch.setattr(dnnlab.train, "train", spy_train)
    monkeypatch.setattr(common, "train", spy_train)
    monkeypatch.setattr(dnnlab.many, "train_many", spy_many)
    ctx = _fake_context(tmp_path, fake_root)
    budget = Budget(trials=3, first_rung=2, low=1e-4, high=1e-1)
    arm = {
        "model": ModelConfig(depth=2, width=8),
        "train_config": TrainConfig(learning_rate=1e-3, epochs=3, patience=2, batch_size=16),
        "data": DataConfig(validation_size=24),
        "budget": budget,
    }
    outcomes, record = tuned_fits(ctx, "relu", seed_list=[FIRST_SEED, FIRST_SEED + 1], **arm)
    rates = [t["learning_rate"] for t in record["trials"]]
    assert len(rates) == 3 and rates[0] == 1e-3 and record["finished"]
    bests = {
        t["candidate"]: t["best_val_loss"] for t in record["trials"] if t["state"] == "complete"
    }
    assert record["chosen"] == rates[choose(bests, SEARCH_RULE)]
    search = [c for c in calls if not c[3]]
    assert {c[1] for c in search} == {FIRST_SEED} and {c[2] for c in search} == set(rates)
    assert {c[0] for c in search} == {"one"}  # candidates one by one: DNNLAB_FIT_MANY=seeds
    # only the seeds, at the chosen rate, see the test set; the first seed's run is the chosen
    # candidate kept (scored after the choice), so only the second trains
    tested = [c for c in calls if c[3]]
    assert tested == [("many", FIRST_SEED + 1, record["chosen"], True)]
    assert outcomes[0].summary["trained_as"] == {
        "search": record["study"],
        "candidate": record["chosen_candidate"],
    }
    assert [(o.summary["seed"], o.summary["learning_rate"]) for o in outcomes] == [
        (FIRST_SEED, record["chosen"]),
        (FIRST_SEED + 1, record["chosen"]),
    ]
    assert all(o.summary["test_accuracy"] is not None for o in outcomes)
    assert (tmp_path / "lr-search.db").is_file()
    calls.clear()
    more, again = tuned_fits(ctx, "relu", seed_list=[FIRST_SEED + 2], **arm)
    assert again["trials"] == record["trials"] and again["chosen"] == record["chosen"]
    assert calls == [("many", FIRST_SEED + 2, record["chosen"], True)]
    # other settings in the same folder (a tour beside the study): another search, no clash
    shorter = {**arm, "train_config": TrainConfig(learning_rate=1e-3, epochs=2, batch_size=16)}
    _, other = tuned_fits(ctx, "relu", seed_list=[FIRST_SEED], **shorter)
    assert other["study"] != record["study"] and other["finished"]
