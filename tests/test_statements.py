"""The statement table: every answer set's statements tested by ids that exist, or a reason."""

import importlib
import inspect
import json
import re

import pytest

from dnnlab.experiments import questions
from dnnlab.experiments.questions import elu_vs_relu, momentum, statements, which_activation
from dnnlab.experiments.questions.statements import STATEMENTS, Statement, judged, rows
from dnnlab.lab import statement_blocks

# Claim ids a judge builds in an f-string, expanded by the values it loops over.
DYNAMIC = {
    "which-activation": [
        f"{a}-{tail}"
        for a in which_activation.SMOOTH
        for tail in ("more-accurate-than-relu", "costs-more-compute")
    ],
    "glorot-he": ["he-keeps-relu-signal", "he-keeps-relu-gradients"],
}


def declared_ids() -> set[str]:
    """Every claim and fact id the question modules write: string literals and DYNAMIC."""
    ids = set()
    for name in questions.MODULES:
        module = importlib.import_module(f"dnnlab.experiments.questions.{name}")
        qid = module.QUESTION.id
        source = inspect.getsource(module)
        ids |= set(re.findall(rf'"({re.escape(qid)}/[a-z0-9-]+)"', source))
        ids |= {f"{qid}/{tail}" for tail in DYNAMIC.get(qid, [])}
    return ids


def test_the_dynamic_ids_are_the_f_strings_of_their_modules():
    wa = inspect.getsource(which_activation)
    assert 'f"which-activation/{a}-more-accurate-than-relu"' in wa
    assert 'id=f"which-activation/{a}-costs-more-compute"' in wa
    gh = inspect.getsource(importlib.import_module("dnnlab.experiments.questions.glorot_he"))
    assert 'id=f"glorot-he/he-keeps-relu-{name}"' in gh
    assert 'keeps("signal", "activation")' in gh and 'keeps("gradients", "gradient")' in gh


def test_every_statement_is_tested_by_ids_that_exist_or_says_why_not():
    known = declared_ids()
    missing = [i for i in statements.referenced_ids() if i not in known]
    assert missing == []
    for s in STATEMENTS:
        assert s.ids or s.why.startswith((statements.UNTESTABLE, statements.UNMEASURED))
        for i in s.ids:
            assert i.split("/", 1)[0] in {q.replace("_", "-") for q in questions.MODULES}


def test_every_answer_set_is_covered_once_per_statement():
    assert {s.source for s in STATEMENTS} == set(statements.SOURCES)
    keys = [(s.source, s.says) for s in STATEMENTS]
    assert len(keys) == len(set(keys))
    assert sum(s.source == "003 key" for s in STATEMENTS) >= 10  # the book's key is a set too


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tests": ()}, "either the ids"),
        ({"tests": ("a/b",), "why": "not measured here: x"}, "either the ids"),
        ({"tests": (), "why": "because"}, "why must start"),
        ({"source": "005"}, "unknown answer set"),
        ({"against": ("q/x",)}, "both agree and disagree"),
    ],
)
def test_a_statement_needs_ids_or_a_reason(kwargs, match):
    base = {"source": "000", "question": "q", "says": "x", "tests": ("q/x",)}
    with pytest.raises(ValueError, match=match):
        Statement(**{**base, **kwargs})


def _result(claims=(), facts=()):
    return {
        "claims": [{"id": i, "verdict": v} for i, v in claims],
        "facts": [{"id": i, "holds": h} for i, h in facts],
    }


@pytest.mark.parametrize(
    ("tests", "against", "found", "expected"),
    [
        (("q/a",), (), [("q/a", "supported")], "right"),
        ((), ("q/a",), [("q/a", "supported")], "wrong"),
        ((), ("q/a",), [("q/a", "refuted")], "right"),
        (("q/a", "q/b"), (), [("q/a", "supported"), ("q/b", "refuted")], "partly right"),
        (("q/a",), ("q/b",), [("q/a", "supported"), ("q/b", "refuted")], "right"),
        (("q/a", "q/b"), (), [("q/a", "supported"), ("q/b", "inconclusive")], "right so far"),
        (("q/a", "q/b"), (), [("q/a", "refuted"), ("q/b", "inconclusive")], "wrong"),
        (("q/a",), (), [("q/a", "inconclusive")], "open"),
        (("q/a",), (), [], "not measured yet"),
    ],
)
def test_a_statement_reads_each_claim_as_agreeing_or_not(tests, against, found, expected):
    s = Statement("000", "q", "x", tests, against)
    assert judged(s, statements.outcomes([_result(found)])) == expected


def test_a_fact_reads_as_its_check_and_untestable_statements_are_not_judged():
    s = Statement("000", "q", "x", against=("q/f",))
    assert judged(s, statements.outcomes([_result(facts=[("q/f", True)])])) == "wrong"
    assert judged(s, statements.outcomes([_result(facts=[("q/f", False)])])) == "right"
    why = Statement("000", "q", "x", why=statements.UNTESTABLE + ": a value judgement")
    assert judged(why, {}) == "not judged"


def test_the_table_follows_the_stored_verdicts():
    target = "dropout-cost/dropout-speeds-up-epochs"
    row = next(r for r in rows([]) if target in [t["id"] for t in r["tests"]])
    assert row["reading"] == "not measured yet"
    refuted = _result([(target, "refuted")], [("dropout-cost/one-pass-per-step", True)])
    row = next(r for r in rows([refuted]) if r["says"] == row["says"])
    assert row["reading"] == "wrong"
    assert row["tests"][0] == {"id": target, "agrees": True, "kind": "claim", "verdict": "refuted"}
    text = statements.markdown([refuted])
    assert (
        f"`{target}`: refuted" in text
        and "`dropout-cost/one-pass-per-step`: fact holds (says the opposite)" in text
    )
    assert text.startswith(f"{len(STATEMENTS)} statements in {len(statements.SOURCES)}")


def test_the_report_section_reads_stored_results(tmp_path):
    folder = tmp_path / "questions" / "dropout-cost"
    folder.mkdir(parents=True)
    record = {
        "format": questions.FORMAT,
        "id": "dropout-cost",
        **_result([("dropout-cost/slowdown-negligible", "refuted")]),
    }
    (folder / "result.json").write_text(json.dumps(record))
    blocks = statement_blocks(tmp_path)
    cells = [c for b in blocks if hasattr(b, "rows") for r in b.rows for c in r]
    assert "`dropout-cost/slowdown-negligible`: refuted" in cells


def test_the_new_facts_hold_on_keras_functions():
    assert all(f.holds for f in elu_vs_relu.facts({}))
    assert all(f.holds for f in momentum.facts({}))
    bounded = next(f for f in elu_vs_relu.facts({}) if f.id.endswith("elu-bounded-below"))
    assert bounded.evidence["min"] == pytest.approx(-1.0, abs=1e-6)


def test_output_range_fact_fails_when_tanh_never_goes_negative():
    out = {"softmax_sum_max_error": 0.0, "ranges_on_z_in_[-50,50]": {"tanh": (0.0, 1.0)}}
    ranges, sums = which_activation.facts({"output": out})
    assert (ranges.holds, sums.holds) == (False, True)
    out["ranges_on_z_in_[-50,50]"]["tanh"] = (-1.0, 1.0)
    out["softmax_sum_max_error"] = 1e-3
    ranges, sums = which_activation.facts({"output": out})
    assert (ranges.holds, sums.holds) == (True, False)


def test_precision_claim_reads_the_departure_of_float32():
    run = {"float32_finite": True, "max_departure": 0.002}
    (claim,) = momentum.statement_claims({"quadratic": {"precision": run}})
    assert claim.verdict == "refuted"
    run["max_departure"] = 0.05
    assert momentum.statement_claims({"quadratic": {"precision": run}})[0].verdict == "supported"
    run.update(float32_finite=False, max_departure=None)
    assert momentum.statement_claims({"quadratic": {"precision": run}})[0].verdict == "supported"
    assert momentum.statement_claims({"quadratic": {}})[0].verdict == "inconclusive"


def test_float32_heavy_ball_is_the_float64_recurrence_rounded():
    single = momentum.heavy_ball_in("float32", (1.0, 25.0), 0.01, 0.9, (-4.0, 1.0), 500)
    double = momentum.heavy_ball_in("float64", (1.0, 25.0), 0.01, 0.9, (-4.0, 1.0), 500)
    assert single.dtype.name == "float32" and double.dtype.name == "float64"
    assert double == pytest.approx(momentum.heavy_ball((1.0, 25.0), 0.01, 0.9, (-4.0, 1.0), 500))
    assert single == pytest.approx(double, abs=1e-5)


@pytest.mark.parametrize(
    ("low", "high", "speeds_up", "negligible"),
    [
        (1.09, 1.15, "refuted", "refuted"),  # dropout's measured slowdown: beyond the allowance
        (0.98, 1.02, "inconclusive", "supported"),  # within the load allowance of 1
        (0.85, 0.9, "supported", "refuted"),  # faster, and by more than the allowance
        (1.0, 1.08, "inconclusive", "inconclusive"),  # straddles the allowance's edge
    ],
)
def test_dropout_speed_statements_on_known_ratios(low, high, speeds_up, negligible):
    from dnnlab.experiments.questions import dropout_cost

    ratio = {"estimate": (low * high) ** 0.5, "ci95_low": low, "ci95_high": high}
    m = {
        "epoch_timing": {
            "rounds": 20,
            "n": 4,
            "processes": 4,
            "isolation": {"cores": [1]},
            "ratios": {"dropout": {"cpu": ratio, "wall": ratio}},
        }
    }
    fast, small = dropout_cost.statement_claims(m)
    assert (fast.verdict, small.verdict) == (speeds_up, negligible)
    assert "001_5d9a0292ed7b7506.txt" in small.source and "negligible" in small.source
    assert "003_e0e88ed27c9ad342.txt" in fast.source
    assert fast.p_value is not None and small.p_value is not None  # in the FDR family
    from dnnlab import timing

    assert f"{1 + timing.LOAD_ALLOWANCE:g}" in small.text  # the allowance, said in the claim
