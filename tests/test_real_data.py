"""One epoch on the official CIFAR-10 folder, where ../shared/datasets has it."""

import pytest

from conftest import SHARED_DATA
from dnnlab import data, variant_config
from dnnlab.train import train

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / data.FOLDER).is_dir(),
    reason=f"the official CIFAR-10 folder is not at {SHARED_DATA / data.FOLDER}",
)


def test_one_epoch_of_the_baseline_on_real_cifar10():
    config = variant_config("baseline", epochs=1)
    splits = data.load_splits(config.data, SHARED_DATA, download=False)  # md5-checked
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (45000, 5000, 10000)
    assert splits.class_names[:2] == ("airplane", "automobile")
    outcome = train(config, splits, verbose=0)
    s = outcome.summary
    assert s["status"] == "finished" and s["epochs_run"] == 1
    assert s["best_val_accuracy"] > 0.2  # chance is 0.1; the book's net gets ~0.25 after one epoch
    assert s["test_accuracy"] > 0.2
