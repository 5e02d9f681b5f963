"""The sparse-models and dropout-cost questions: their measurements on known cases, end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnnlab.config import DataConfig, TrainConfig
from dnnlab.data import load_splits
from dnnlab.experiments.questions import Context
from dnnlab.experiments.questions import dropout_cost as dc
from dnnlab.experiments.questions import sparse_models as sm


def test_prune_smallest_zeroes_exactly_the_smallest_magnitudes():
    kernel = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    kernel[::2] *= -1  # signs must not matter
    pruned = sm.prune_smallest(kernel, 0.5)
    assert sm.zero_fraction([pruned]) == 0.5
    np.testing.assert_array_equal(pruned == 0, np.abs(kernel) <= 50)
    np.testing.assert_array_equal(pruned[pruned != 0], kernel[np.abs(kernel) > 50])
    assert sm.zero_fraction([sm.prune_smallest(kernel, 0.98)]) == 0.98
    np.testing.assert_array_equal(sm.prune_smallest(kernel, 0.0), kernel)


def test_global_pruning_uses_one_threshold_for_all_kernels():
    a, b = np.array([[1.0, -2.0], [3.0, 4.0]]), np.array([[-0.5, 10.0]])
    pa, pb = sm.prune_global([a, b], 0.5)  # the 3 smallest of 6: 0.5, 1, 2
    np.testing.assert_array_equal(pa, [[0, 0], [3, 4]])
    np.testing.assert_array_equal(pb, [[0, 10]])
    assert [k.shape for k in sm.prune_layerwise([a, b], 0.5)] == [(2, 2), (1, 2)]
    assert sm.zero_fraction(sm.prune_layerwise([a, b], 0.5)) == pytest.approx(3 / 6)


def test_polynomial_schedule_at_start_middle_and_end():
    s = dict(initial=0.0, final=0.9, begin=100, end=300)
    assert sm.polynomial_sparsity(0, **s) == 0.0  # before t0: initial
    assert sm.polynomial_sparsity(100, **s) == 0.0
    # p = 1/2: 0.9 + (0 - 0.9) * 0.5**3 = 0.9 - 0.1125
    assert sm.polynomial_sparsity(200, **s) == pytest.approx(0.7875)
    assert sm.polynomial_sparsity(300, **s) == pytest.approx(0.9)
    assert sm.polynomial_sparsity(10_000, **s) == pytest.approx(0.9)
    updates = [t for t in range(400) if sm.is_mask_update(t, begin=100, end=125, frequency=10)]
    assert updates == [100, 110, 120, 125]


def test_int8_quantization_zeroes_only_weights_below_half_a_step():
    # scale = 1.27 / 127 = 0.01: w / scale = 127, 0.4, -0.6, 0.49, -100, 0.51
    kernel = np.array([[1.27, 0.004, -0.006], [0.0049, -1.0, 0.0051]], dtype=np.float32)
    q, scale = sm.int8_quantize(kernel)
    assert scale == pytest.approx(0.01)
    np.testing.assert_array_equal(q, [[127, 0, -1], [0, -100, 1]])
    assert sm.zero_fraction([q]) == pytest.approx(2 / 6)
    np.testing.assert_allclose(sm.dequantized(kernel), q * 0.01, rtol=1e-6)


def test_sparsity_exact_and_near_zero():
    a = np.array([[0.0, 1e-4, 0.5], [1.0, -2e-3, 0.0]])  # threshold 1e-3 * 1.0
    b = np.array([[10.0, 0.005]])  # threshold 1e-2: 0.005 is near zero
    assert sm.zero_fraction([a]) == pytest.approx(2 / 6)
    assert sm.near_zero_fraction([a]) == pytest.approx(3 / 6)
    assert sm.near_zero_fraction([a, b]) == pytest.approx(4 / 8)
    np.testing.assert_array_equal(sm.threshold(a), [[0, 0, 0.5], [1.0, -2e-3, 0]])


def test_never_counts_as_infinitely_late_in_the_median():
    assert dc._median_or_inf([3, None, 5]) == 5.0
    assert dc._median_or_inf([None, None, 2]) == np.inf


def test_scaling_check_linear_supported_constant_refuted():
    ks = (1, 5, 10, 30)
    linear = [0.2 + 0.1 * k for k in ks]
    check = dc.scaling_check(ks, linear, plain_seconds=0.1)
    assert check["supported"]
    assert check["slope"] == pytest.approx(0.1)
    assert check["intercept"] == pytest.approx(0.2)
    assert check["r2"] == pytest.approx(1.0)
    assert check["ratio_to_one_sample"][-1] == pytest.approx(3.2 / 0.3)
    constant = dc.scaling_check(ks, [0.5] * 4, plain_seconds=0.1)
    assert not constant["supported"]
    assert constant["r2"] is None
    assert constant["slope"] == pytest.approx(0.0, abs=1e-12)
    # Linear, but each sample costs 10 plain predictions: not "about K plain predictions".
    assert not dc.scaling_check(ks, [1.0 * k for k in ks], plain_seconds=0.1)["supported"]


def test_timed_alternating_reverses_order():
    calls = []
    jobs = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    times = dc.timed_alternating(jobs, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert [len(v) for v in times.values()] == [3, 3]


def _context(tmp_path, fake_root, seeds: int) -> Context:
    folder = tmp_path / "q"
    folder.mkdir()
    return Context(
        folder=folder,
        load_splits=lambda config: load_splits(config, fake_root, check_md5=False, download=False),
        seeds=seeds,
    )


def _check(result, folder, question_id):
    assert result.claims
    for claim in result.claims:
        assert claim.id.startswith(f"{question_id}/")
        assert claim.text
        assert isinstance(claim.supported, bool)
        assert claim.evidence
    assert result.answer
    for name in result.figures:
        assert (folder / name).is_file()


TINY_DATA = DataConfig(validation_size=24, standardize=True)
TINY_TRAIN = TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16)


def test_sparse_models_end_to_end(tmp_path, fake_root, monkeypatch):
    monkeypatch.setattr(sm, "DATA", TINY_DATA)
    monkeypatch.setattr(sm, "TRAIN", TINY_TRAIN)
    monkeypatch.setattr(sm, "MODEL", dataclasses.replace(sm.MODEL, depth=2, width=8))
    monkeypatch.setattr(
        sm, "DROPOUT_MODEL", dataclasses.replace(sm.DROPOUT_MODEL, depth=2, width=8)
    )
    monkeypatch.setattr(sm, "STUDENT_EPOCHS", 1)
    ctx = _context(tmp_path, fake_root, seeds=1)
    result = sm.run(ctx)
    _check(result, ctx.folder, "sparse-models")
    ids = {c.id for c in result.claims}
    assert {
        "sparse-models/dropout-gives-sparse-weights",
        "sparse-models/quantization-gives-sparse-weights",
        "sparse-models/distillation-gives-sparse-weights",
        "sparse-models/relu-activation-sparsity-is-not-weight-sparsity",
        "sparse-models/gradual-pruning-beats-one-shot",
    } <= ids
    for g in result.details["gradual"]:
        assert g["sparsity"] == pytest.approx(sm.GRADUAL_FINAL, abs=0.01)


def test_dropout_cost_end_to_end(tmp_path, fake_root, monkeypatch):
    monkeypatch.setattr(dc, "DATA", TINY_DATA)
    monkeypatch.setattr(dc, "TRAIN", TINY_TRAIN)
    monkeypatch.setattr(dc, "MODEL", dataclasses.replace(dc.MODEL, depth=2, width=8))
    monkeypatch.setattr(
        dc, "DROPOUT_MODEL", dataclasses.replace(dc.DROPOUT_MODEL, depth=2, width=8)
    )
    monkeypatch.setattr(dc, "TIMING_REPEATS", 2)
    monkeypatch.setattr(dc, "EPOCH_REPEATS", 2)
    ctx = _context(tmp_path, fake_root, seeds=2)
    result = dc.run(ctx)
    _check(result, ctx.folder, "dropout-cost")
    ids = {c.id for c in result.claims}
    assert {"dropout-cost/slower-convergence", "dropout-cost/mc-cost-scales-with-k"} <= ids
