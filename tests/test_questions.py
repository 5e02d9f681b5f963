"""The questions framework and the same-init question, on cases with a known answer."""

import json

import numpy as np
import pytest

from dnnlab import ConfigError, DataConfig, TrainConfig, data
from dnnlab.experiments import questions
from dnnlab.experiments.questions import Claim, Context, Question, Result, answer, same_init, select
from dnnlab.experiments.questions.same_init import distinct_neurons


def test_a_layer_with_identical_columns_counts_as_one_neuron():
    assert distinct_neurons(np.full((5, 7), 0.3)) == 1
    kernel = np.arange(12.0).reshape(3, 4)
    assert distinct_neurons(kernel) == 4
    kernel[:, 2] = kernel[:, 0]
    assert distinct_neurons(kernel) == 3
    kernel[:, 3] = kernel[:, 1] + 1e-9  # float noise far below rtol x max|w|
    assert distinct_neurons(kernel) == 2


def _question(calls, claims=None):
    def run(ctx):
        calls.append(ctx.folder)
        (ctx.folder / "f.png").write_bytes(b"png")
        return Result(
            claims=claims or [Claim("toy/claim", "a claim", True, {"x": float("nan"), "n": 3})],
            answer="yes",
            figures=["f.png"],
            details={"array": np.arange(3), "scalar": np.float32(0.5)},
        )

    return Question(id="toy", question="Is it?", data="none", run=run)


def _context(folder):
    return Context(folder=folder, load_splits=lambda config: None)


def test_answer_stores_json_and_reuses_it(tmp_path):
    calls = []
    record = answer(_question(calls), tmp_path, _context)
    path = tmp_path / "questions" / "toy" / "result.json"
    assert json.loads(path.read_text()) == record
    assert record["claims"] == [
        {"id": "toy/claim", "text": "a claim", "supported": True, "evidence": {"x": None, "n": 3}}
    ]
    assert record["details"] == {"array": [0, 1, 2], "scalar": 0.5}
    assert (tmp_path / "questions" / "toy" / "f.png").exists()
    assert answer(_question(calls), tmp_path, _context) == record
    assert len(calls) == 1
    answer(_question(calls), tmp_path, _context, force=True)
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "questions").iterdir()) == ["toy"]


def test_claim_ids_must_name_their_question(tmp_path):
    bad = [Claim("other/claim", "a claim", True, {})]
    with pytest.raises(ValueError, match="must start with toy/"):
        answer(_question([], bad), tmp_path, _context)
    assert questions.stored(tmp_path, "toy") is None


def test_unknown_question_ids_are_a_clear_error():
    with pytest.raises(ConfigError, match="unknown question nope; choose from: glorot-he"):
        select(["nope"])


def test_report_section_shows_each_claim_with_its_verdict(tmp_path):
    answer(_question([]), tmp_path, _context)
    stored = tmp_path / "questions" / "toy"
    (tmp_path / "questions" / "same-init").mkdir()
    record = json.loads((stored / "result.json").read_text())
    record["id"] = "same-init"
    (tmp_path / "questions" / "same-init" / "result.json").write_text(json.dumps(record))
    (tmp_path / "questions" / "same-init" / "f.png").write_bytes(b"png")
    blocks = questions.report_blocks(tmp_path)
    table = next(b for b in blocks if hasattr(b, "rows"))
    assert table.rows == (("a claim", "supported", "x = None; n = 3"),)


def test_same_init_end_to_end_on_fake_data(fake_root, tmp_path, monkeypatch):
    monkeypatch.setattr(same_init, "DATA", DataConfig(validation_size=24, standardize=True))
    monkeypatch.setattr(
        same_init, "TRAIN", TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16)
    )

    def load(config):
        return data.load_splits(config, fake_root, check_md5=False, download=False)

    def context(folder):
        return Context(folder=folder, load_splits=load, seeds=2)

    record = answer(same_init.QUESTION, tmp_path, context)
    claims = {c["id"]: c for c in record["claims"]}
    identical = claims["same-init/identical-neurons"]
    assert identical["supported"] is True
    assert identical["evidence"]["distinct_neurons_per_layer_same_init"] == [[1, 1, 1, 1]] * 2
    assert all(min(c) > 1 for c in identical["evidence"]["distinct_neurons_per_layer_he_init"])
    assert isinstance(claims["same-init/worse-accuracy"]["supported"], bool)
    assert (tmp_path / "questions" / "same-init" / "same_init.png").stat().st_size > 1000
