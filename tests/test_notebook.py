"""notebooks/chapter11.ipynb runs end to end in a fresh kernel (nbclient) on tiny data."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "chapter11.ipynb"

TINY = """
from pathlib import Path
from dnnlab import DataConfig, TrainConfig
from dnnlab.experiments.questions import same_init
QUICK = False
DATA_DIR = {data!r}
OUT = Path({out!r})
STUDY = {{"lr": "book", "check_md5": False, "workers": 2,  # as the notebook: workers
          "overrides": {{"validation_size": 24, "epochs": 2, "depth": 2, "width": 8}}}}
QUESTIONS = {{"ids": ["same-init"], "seeds": 2, "check_md5": False, "settings": {{
    "same-init": same_init.Settings(
        train=TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16),
        data=DataConfig(validation_size=24, standardize=True))}}}}
"""


def _outputs(cell) -> dict[str, str]:
    """A cell's outputs by MIME type (streams as text/plain), joined."""
    found: dict[str, str] = {}
    for out in cell.get("outputs", []):
        items = (
            {"text/plain": out["text"]} if out["output_type"] == "stream" else out.get("data", {})
        )
        for mime, value in items.items():
            found[mime] = found.get(mime, "") + (
                value if isinstance(value, str) else "".join(value)
            )
    return found


def test_the_notebook_runs_on_tiny_data_with_figures_and_tables_inline(fake_root, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "QUICK = True" in params.source  # the notebook's own default is the quick tour
    assert '"workers": WORKERS' in params.source  # exercise 8 with the command's workers
    params.source = TINY.format(data=str(fake_root), out=str(tmp_path / "runs"))
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [_outputs(c) for c in code]
    by_source = {c.source.splitlines()[-1]: o for c, o in zip(code, outputs, strict=True)}
    study = by_source["lab.list_runs(where)"]
    assert "exercise 8" in study.get("text/plain", "")  # the progress bar (text or widget)
    assert "<table" in study["text/html"]  # the runs, as a table
    assert "baseline-seed42-" in by_source["lab.list_runs(where)"]["text/html"]
    assert "<table" in by_source["lab.study_progress(where)"]["text/html"]
    assert "image/png" in by_source['plots.compare_curves(by_variant, x="epoch")']
    assert "image/png" in by_source["plots.layer_stats(stats)"]
    range_test, questions = (
        o
        for c, o in zip(code, outputs, strict=True)
        if "lr_finder" in c.source or "run_questions" in c.source
    )
    assert "image/png" in range_test and "image/png" in questions
    assert "same-init" in questions["text/markdown"]
    assert "<iframe srcdoc=" in by_source["report"]["text/html"]
    assert "this notebook ran in" in outputs[-1]["text/plain"]
    assert (tmp_path / "runs" / "report.html").is_file()
    assert (tmp_path / "runs" / "questions" / "same-init" / "result.json").is_file()
