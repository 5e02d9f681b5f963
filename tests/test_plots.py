"""Figures are Figure objects made without pyplot; importing dnnlab leaves the backend alone."""

from __future__ import annotations

import subprocess
import sys

from matplotlib.figure import Figure

from dnnlab import plots

HISTORY = [
    {
        "epoch": e,
        "loss": 2.0 / e,
        "accuracy": 0.1 * e,
        "val_loss": 2.2 / e,
        "val_accuracy": 0.09 * e,
    }
    for e in (1, 2, 3)
]


def test_importing_dnnlab_leaves_the_backend_alone():
    # A notebook's inline backend must survive `import dnnlab` (and drawing a figure).
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import dnnlab, dnnlab.plots, dnnlab.lab, dnnlab.cli; "
        "dnnlab.plots.subplots(); print(matplotlib.get_backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["svg"]


def test_a_figure_is_returned_and_saved_only_when_asked(tmp_path):
    fig = plots.learning_curves(HISTORY, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "curves.png"
    assert isinstance(plots.learning_curves(HISTORY, path), Figure)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left


def test_subplots_matches_pyplots_shapes():
    fig, axes = plots.subplots(2, 3, squeeze=False, constrained_layout=True)
    assert axes.shape == (2, 3) and fig.get_layout_engine() is not None
    _, ax = plots.subplots()
    assert ax in ax.figure.axes
