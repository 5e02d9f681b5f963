"""TensorBoard event files: checked record by record here, and by TensorBoard's own reader."""

import dataclasses
import struct
from pathlib import Path

import keras
import pytest
from tensorboardX.proto.api_pb2 import Status
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
from tensorboardX.record_writer import masked_crc32c

from dnnlab import DataConfig, data
from dnnlab.runs import execute
from dnnlab.tensorboard import FOLDER, TensorBoardLog, flat_hparams
from dnnlab.train import train


def read_events(folder: Path) -> list[Event]:
    """Every event in ``folder``'s event files, in file order, each record's two CRCs checked.

    The TFRecord framing: length (uint64), masked CRC-32C of the length, data,
    masked CRC-32C of the data; each record is one serialized ``Event``.
    """
    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        raw, at = path.read_bytes(), 0
        while at < len(raw):
            header = raw[at : at + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", raw[at + 8 : at + 12])[0] == masked_crc32c(header)
            body, crc = raw[at + 12 : at + 12 + length], raw[at + 12 + length : at + 16 + length]
            assert struct.unpack("<I", crc)[0] == masked_crc32c(body)
            events.append(Event.FromString(body))
            at += 16 + length
    return events


def scalars(events: list[Event]) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def hparams_plugin_data(events: list[Event]) -> dict[str, HParamsPluginData]:
    found = {}
    for event in events:
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                content = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                found[value.tag] = content
    return found


@pytest.fixture
def loader(fake_root):
    return lambda: data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


@pytest.fixture
def stored(tiny_config, loader, tmp_path):
    return execute(tiny_config, loader, tmp_path / "runs", verbose=0)


def _approx(values):
    return pytest.approx(values, rel=1e-6)  # event files hold float32


def test_every_epoch_is_logged_for_training_and_validation(stored):
    logs = stored.path / FOLDER
    history = stored.history
    steps = [row["epoch"] for row in history]
    train_scalars = scalars(read_events(logs / "train"))
    assert sorted(train_scalars) == [
        "epoch_accuracy",
        "epoch_learning_rate",
        "epoch_loss",
        "epoch_seconds",
    ]
    for tag, key in (
        ("epoch_loss", "loss"),
        ("epoch_accuracy", "accuracy"),
        ("epoch_learning_rate", "learning_rate"),
    ):
        assert [s for s, _ in train_scalars[tag]] == steps
        assert [v for _, v in train_scalars[tag]] == _approx([row[key] for row in history])
    assert all(v > 0 for _, v in train_scalars["epoch_seconds"])
    valid = scalars(read_events(logs / "validation"))
    assert sorted(valid) == ["epoch_accuracy", "epoch_loss"]
    assert [v for _, v in valid["epoch_loss"]] == _approx([row["val_loss"] for row in history])
    assert [v for _, v in valid["epoch_accuracy"]] == _approx([r["val_accuracy"] for r in history])


def test_the_run_is_one_hparams_session_with_its_settings_and_final_metrics(stored):
    events = read_events(stored.path / FOLDER)
    plugin = hparams_plugin_data(events)
    assert sorted(plugin) == ["_hparams_/session_end_info", "_hparams_/session_start_info"]
    start = plugin["_hparams_/session_start_info"].session_start_info.hparams
    expected = flat_hparams(stored.config)
    assert expected["model.depth"] == 2 and expected["data.train_size"] == "none"
    got = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.items()}
    assert got == {k: float(v) if not isinstance(v, str | bool) else v for k, v in expected.items()}
    end = plugin["_hparams_/session_end_info"].session_end_info
    assert end.status == Status.Value("STATUS_SUCCESS")
    final = scalars(events)
    s = stored.summary
    assert final["final/test_accuracy"] == [(s["epochs_run"], _approx(s["test_accuracy"]))]
    assert final["final/best_val_loss"] == [(s["epochs_run"], _approx(s["best_val_loss"]))]
    assert final["final/best_epoch"] == [(s["epochs_run"], s["best_epoch"])]
    assert final["final/val_accuracy"] == [(s["epochs_run"], _approx(s["val_accuracy"]))]
    # No experiment summary: TensorBoard builds one from all runs' sessions.
    assert "_hparams_/experiment" not in plugin


class Interrupt(Exception):
    pass


class InterruptAt3(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            raise Interrupt  # after TensorBoard logged epoch 3, before its checkpoint


def _interrupted_then_resumed(config, splits, folder):
    board = folder / FOLDER
    with pytest.raises(Interrupt):
        train(
            config,
            splits,
            verbose=0,
            checkpoint=folder / "resume.npz",
            callbacks=[TensorBoardLog(board, flat_hparams(config)), InterruptAt3()],
        )
    return train(
        config,
        splits,
        verbose=0,
        checkpoint=folder / "resume.npz",
        callbacks=[TensorBoardLog(board, flat_hparams(config))],
    )


def test_a_resumed_run_purges_what_the_interrupted_one_logged_past_its_checkpoint(
    tiny_config, loader, tmp_path
):
    config = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, epochs=5, patience=5)
    )
    outcome = _interrupted_then_resumed(config, loader(), tmp_path)
    assert outcome.summary["resumed_from_epoch"] == 2
    events = read_events(tmp_path / FOLDER / "train")
    starts = [e.step for e in events if e.session_log.status == SessionLog.START]
    assert starts == [1, 3]  # the resumed writer hides the old epoch 3 and anything after it
    logged = [s for s, _ in scalars(events)["epoch_loss"]]
    assert logged == [1, 2, 3, 3, 4, 5]  # raw records; TensorBoard keeps the last 3
    sessions = hparams_plugin_data(read_events(tmp_path / FOLDER))
    assert list(sessions) == ["_hparams_/session_start_info"]  # written once, not on resume


def test_tensorboard_itself_reads_the_scalars_the_hparams_and_the_purge(
    tiny_config, loader, tmp_path
):
    pytest.importorskip("tensorboard")  # an optional extra: pip install dnnlab[tensorboard]
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    config = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, epochs=5, patience=5)
    )
    outcome = _interrupted_then_resumed(config, loader(), tmp_path)
    reader = event_accumulator.EventAccumulator(str(tmp_path / FOLDER / "train"))
    reader.Reload()
    loss = reader.Scalars("epoch_loss")
    assert [e.step for e in loss] == [1, 2, 3, 4, 5]
    assert [e.value for e in loss] == _approx([row["loss"] for row in outcome.history])
    session = event_accumulator.EventAccumulator(str(tmp_path / FOLDER))
    session.Reload()
    content = session.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = metadata.parse_session_start_info_plugin_data(content)
    assert start.hparams["variant"].string_value == "baseline"
    assert start.hparams["train.learning_rate"].number_value == pytest.approx(1e-3)
