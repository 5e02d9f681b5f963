"""The quick tour (--quick): every question's settings made small, a folder of its own, a label."""

from __future__ import annotations

import dataclasses

from dnnlab import lab, tour
from dnnlab.experiments import questions as qs


def _epochs(settings) -> int:
    """A question's training epochs (0 for one that trains nothing)."""
    if hasattr(settings, "epochs"):
        return settings.epochs
    return settings.train.epochs if hasattr(settings, "train") else 0


def test_every_question_has_tour_settings_smaller_than_the_studys():
    quick = tour.question_settings()
    assert list(quick) == list(qs.registry())
    for qid, settings in quick.items():
        study = qs.registry()[qid].settings
        assert type(settings) is type(study) and settings != study, qid
        assert settings.data.train_size == tour.QUESTION_IMAGES < study.data.train_size, qid
        assert _epochs(settings) <= _epochs(study), qid
        # Nothing else of the study's design changes (models, rates, activations compared).
        same = [f.name for f in dataclasses.fields(study) if f.name in ("model", "activations")]
        assert all(getattr(settings, n) == getattr(study, n) for n in same), qid


def test_a_tour_lives_in_its_own_folder_and_its_report_says_it_is_a_tour(tmp_path):
    assert lab.workplace(tmp_path) == tmp_path
    where = lab.workplace(tmp_path, quick=True)
    assert where == tmp_path / "tour" and tour.is_tour(where) and not tour.is_tour(tmp_path)
    text = lab.build_report(where).markdown.read_text()
    assert text.startswith(f"# {lab.TITLE} (quick tour, not the study)")
    assert "A quick tour, not the study." in text
    plain = lab.build_report(tmp_path).markdown.read_text()
    assert "quick tour" not in plain


def test_the_tour_study_is_a_valid_small_study():
    from dnnlab.experiments.exercise8_worker import study_with

    study = study_with(tour.STUDY)
    assert study.seeds == 1 and study.budget.trials == 2
    config = study.config("baseline")
    assert config.data.train_size == tour.TRAIN_IMAGES and config.train.epochs == 6
