import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import CLASSES, PER_BATCH, checksums, write_fake_cifar
from dnnlab import DataConfig, DataError, data


def test_reads_the_official_layout_as_hwc_uint8(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    # One 32x32 image: red plane all 1, green 2, blue 3, except pixel (0, 1) of red = 9.
    row = np.concatenate([np.full(1024, 1), np.full(1024, 2), np.full(1024, 3)]).astype(np.uint8)
    row[1] = 9
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": row[None, :], b"labels": [4]}, f, protocol=2)
    x, y = data.read_batch(folder / "data_batch_1")
    assert x.shape == (1, 32, 32, 3) and x.dtype == np.uint8
    assert y.tolist() == [4] and y.dtype == np.int32
    assert x[0, 0, 0].tolist() == [1, 2, 3]
    assert x[0, 0, 1].tolist() == [9, 2, 3]  # row-major within a plane


def test_loads_a_whole_fake_folder(fake_root):
    folder = fake_root / "cifar-10-batches-py"
    (x_train, y_train), (x_test, y_test), names = data.load_cifar10(
        fake_root, check_md5=False, download=False
    )
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3)
    assert x_test.shape == (PER_BATCH, 32, 32, 3)
    assert names == CLASSES
    first, labels = data.read_batch(folder / "data_batch_1")
    np.testing.assert_array_equal(x_train[:PER_BATCH], first)
    np.testing.assert_array_equal(y_train[:PER_BATCH], labels)


def test_locate_accepts_the_folder_or_its_parent(fake_root):
    folder = fake_root / "cifar-10-batches-py"
    assert data.locate(fake_root, download=False) == folder
    assert data.locate(folder, download=False) == folder


def test_locate_order_data_dir_env_keras_cache_own_cache(tmp_path, monkeypatch):
    places = {n: tmp_path / n for n in ("arg", "env", "keras", "own")}
    monkeypatch.setenv("DNNLAB_DATA_DIR", str(places["env"]))
    monkeypatch.setenv("KERAS_HOME", str(places["keras"]))
    monkeypatch.setenv("DNNLAB_CACHE_DIR", str(places["own"]))
    write_fake_cifar(places["own"])
    assert data.locate(places["arg"], download=False) == places["own"] / data.FOLDER
    write_fake_cifar(places["keras"] / "datasets" / "cifar-10-batches-py-target")  # Keras 3 layout
    assert data.locate(places["arg"], download=False).parent.name == "cifar-10-batches-py-target"
    write_fake_cifar(places["keras"] / "datasets")  # Keras 2 layout comes first
    assert data.locate(places["arg"], download=False) == places["keras"] / "datasets" / data.FOLDER
    write_fake_cifar(places["env"])
    assert data.locate(places["arg"], download=False) == places["env"] / data.FOLDER
    write_fake_cifar(places["arg"])
    assert data.locate(places["arg"], download=False) == places["arg"] / data.FOLDER


def test_incomplete_folder_is_an_error_not_a_silent_download(fake_root):
    (fake_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="incomplete CIFAR-10 folder \\(missing data_batch_3\\)"):
        data.locate(fake_root)


def test_md5_mismatch_names_the_file_and_what_to_do(fake_root):
    folder = fake_root / "cifar-10-batches-py"
    sums = checksums(folder)
    data.verify(folder, sums)
    with open(folder / "data_batch_2", "r+b") as f:
        f.seek(500)
        f.write(b"\x00\x01\x02")
    with pytest.raises(DataError) as info:
        data.verify(folder, sums)
    message = str(info.value)
    assert "data_batch_2 is truncated or corrupted" in message
    assert "replace it with the official file" in message
    assert "\n" not in message


def test_real_folder_of_fake_files_fails_the_official_md5(fake_root):
    with pytest.raises(DataError, match="data_batch_1 is truncated or corrupted"):
        data.load_cifar10(fake_root, download=False)


def test_truncated_batch_is_a_clear_error_even_without_md5(fake_root):
    path = fake_root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="test_batch is not a readable CIFAR-10 batch"):
        data.load_cifar10(fake_root, check_md5=False, download=False)


def test_md5_is_checked_once_and_again_after_a_change(fake_root, monkeypatch):
    folder = fake_root / "cifar-10-batches-py"
    sums = checksums(folder)
    data.verify(folder, sums)
    computed = []
    real_md5 = data.md5
    monkeypatch.setattr(data, "md5", lambda p: computed.append(p.name) or real_md5(p))
    data.verify(folder, sums)
    assert computed == []
    path = folder / "data_batch_4"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    data.verify(folder, sums)
    assert computed == ["data_batch_4"]


def test_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch.*unexpected object"):
        data.read_batch(path)


def test_split_is_the_books(fake_root):
    train, test, names = data.load_cifar10(fake_root, check_md5=False, download=False)
    s = data.make_splits(train, test, DataConfig(validation_size=30), names)
    np.testing.assert_array_equal(s.x_valid, train[0][:30].astype(np.float32))
    np.testing.assert_array_equal(s.y_valid, train[1][:30])
    np.testing.assert_array_equal(s.x_train, train[0][30:].astype(np.float32))
    np.testing.assert_array_equal(s.y_test, test[1])
    assert s.x_train.dtype == np.float32 and s.x_train.max() > 1  # raw 0-255, as in the book
    small = data.make_splits(train, test, DataConfig(validation_size=30, train_size=7), names)
    np.testing.assert_array_equal(small.x_train, s.x_train[:7])


def test_standardization_uses_the_training_split_only(fake_root):
    train, test, _ = data.load_cifar10(fake_root, check_md5=False, download=False)
    s = data.make_splits(train, test, DataConfig(validation_size=30, standardize=True))
    raw = train[0][30:].astype(np.float64)
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1, atol=1e-3)
    expected_valid = (train[0][:30] - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(s.x_valid, expected_valid, rtol=1e-4, atol=1e-4)


def test_validation_size_too_large_is_a_clear_error(fake_root):
    train, test, _ = data.load_cifar10(fake_root, check_md5=False, download=False)
    with pytest.raises(DataError, match="use a smaller --validation-size"):
        data.make_splits(train, test, DataConfig(validation_size=len(train[0])))


def _fake_archive(tmp_path: Path) -> Path:
    src = write_fake_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return archive


def test_download_fetches_checks_and_unpacks_into_the_cache(tmp_path, monkeypatch):
    archive = _fake_archive(tmp_path)
    monkeypatch.setattr(data, "URL", archive.as_uri())
    monkeypatch.setattr(data, "ARCHIVE_MD5", data.md5(archive))
    folder = data.locate(None)
    assert folder == data.cache_dir() / data.FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(checksums(folder))
    assert [p.name for p in data.cache_dir().iterdir()] == [data.FOLDER]  # archive removed
    assert data.locate(None, download=False) == folder


def test_download_with_a_wrong_md5_fails_cleanly(tmp_path, monkeypatch):
    archive = _fake_archive(tmp_path)
    monkeypatch.setattr(data, "URL", archive.as_uri())
    with pytest.raises(DataError, match="downloading .* failed .*hash does not match"):
        data.locate(tmp_path / "target")
    assert not (tmp_path / "target" / data.FOLDER).exists()


def test_missing_data_and_no_network_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "URL", (tmp_path / "no-such-archive.tar.gz").as_uri())
    with pytest.raises(DataError) as info:
        data.locate(tmp_path / "empty")
    message = str(info.value)
    assert message.startswith("CIFAR-10 not found in ")
    assert "pass --data-dir DIR or set DNNLAB_DATA_DIR" in message
    assert "\n" not in message


def test_fake_batches_are_pickles_like_the_official_ones(fake_root):
    raw = (fake_root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    batch = pickle.load(io.BytesIO(raw), encoding="bytes")
    assert set(batch) >= {b"data", b"labels"}


def _no_download(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "URL", (tmp_path / "offline.tar.gz").as_uri())


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("data-dir", "cifar-10-python.tar.gz"),  # downloaded by hand
        ("keras", "cifar-10-batches-py.tar.gz"),  # Keras 2 left it in its cache
        ("keras", "cifar-10-batches-py-target_archive"),  # Keras 3
        ("own", "cifar-10-python.tar.gz"),
    ],
)
def test_an_archive_in_a_searched_place_is_checked_and_unpacked_not_downloaded(
    tmp_path, monkeypatch, where, name
):
    _no_download(monkeypatch, tmp_path)
    archive = _fake_archive(tmp_path)
    monkeypatch.setattr(data, "ARCHIVE_MD5", data.md5(archive))
    place = {
        "data-dir": tmp_path / "arg",
        "keras": Path(os.environ["KERAS_HOME"]) / "datasets",
        "own": data.cache_dir(),
    }[where]
    place.mkdir(parents=True)
    archive.rename(place / name)
    folder = data.locate(tmp_path / "arg")
    assert folder == place / data.FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(checksums(folder))
    assert sorted(p.name for p in place.iterdir()) == sorted([data.FOLDER, name])  # archive kept
    assert data.locate(tmp_path / "arg", download=False) == folder  # found as a folder now


def test_a_wrong_archive_is_one_line_saying_what_to_do(tmp_path, monkeypatch, capsys):
    _no_download(monkeypatch, tmp_path)
    archive = _fake_archive(tmp_path)  # not the official file: the official md5 fails
    got = data.md5(archive)
    with pytest.raises(DataError) as info:
        data.locate(tmp_path)
    assert str(info.value) == (
        f"{archive} is not the official CIFAR-10 archive (md5 {got}, official "
        f"{data.ARCHIVE_MD5}): it is truncated or corrupted; delete it and download "
        f"{data.URL} again, or pass --no-md5 if it is your own data"
    )
    assert not (tmp_path / data.FOLDER).exists()
    assert data.locate(tmp_path, check_md5=False) == tmp_path / data.FOLDER  # --no-md5


def test_a_truncated_archive_with_md5_off_is_a_clean_error(tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    archive = _fake_archive(tmp_path)
    archive.write_bytes(archive.read_bytes()[:3000])
    with pytest.raises(DataError, match="unpacking .*cifar-10-python.tar.gz into .* failed"):
        data.locate(tmp_path, check_md5=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz", "src"]


def test_an_archive_in_a_read_only_place_is_unpacked_into_the_cache(tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    archive = _fake_archive(tmp_path)
    real_access = os.access
    monkeypatch.setattr(data.os, "access", lambda p, mode: mode != os.W_OK and real_access(p, mode))
    folder = data.locate(tmp_path, check_md5=False)
    assert folder == data.cache_dir() / data.FOLDER
    assert archive.exists()


def test_a_split_cache_reads_the_files_once_for_every_data_config(fake_root, monkeypatch):
    reads = []
    real = data.read_batch
    monkeypatch.setattr(data, "read_batch", lambda path: reads.append(path) or real(path))
    cache = data.SplitCache(fake_root, check_md5=False)
    raw = cache(DataConfig(validation_size=24))
    std = cache(DataConfig(validation_size=24, standardize=True))
    assert len(reads) == len(data.TRAIN_BATCHES) + 1  # read once, for both
    assert cache(DataConfig(validation_size=24)) is raw
    fresh = data.load_splits(
        DataConfig(validation_size=24, standardize=True), fake_root, check_md5=False
    )
    for name in ("x_train", "y_train", "x_valid", "x_test", "y_test"):
        assert np.array_equal(getattr(std, name), getattr(fresh, name))
    assert not raw.y_train.flags.writeable  # a view of the labels read: kept read-only


def test_batches_decoded_once_are_mapped_by_later_loads_until_a_file_changes(
    fake_root, monkeypatch
):
    reads = []
    real = data.read_batch
    monkeypatch.setattr(data, "read_batch", lambda path: reads.append(path) or real(path))
    first = data.load_cifar10(fake_root, check_md5=False, download=False)
    assert len(reads) == len(data.TRAIN_BATCHES) + 1
    again = data.load_cifar10(fake_root, check_md5=False, download=False)
    assert len(reads) == len(data.TRAIN_BATCHES) + 1  # mapped from the cache, not decoded
    for a, b in zip((*first[0], *first[1]), (*again[0], *again[1]), strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype and not b.flags.writeable
    assert again[2] == first[2]
    batch = fake_root / "cifar-10-batches-py" / "data_batch_3"
    rewritten = pickle.loads(batch.read_bytes())
    rewritten[b"labels"] = [(label + 1) % 10 for label in rewritten[b"labels"]]
    batch.write_bytes(pickle.dumps(rewritten, protocol=2))
    changed = data.load_cifar10(fake_root, check_md5=False, download=False)
    assert len(reads) == 2 * (len(data.TRAIN_BATCHES) + 1)  # decoded again
    assert not np.array_equal(changed[0][1], first[0][1])
    monkeypatch.setattr(data, "DECODED", False)
    data.load_cifar10(fake_root, check_md5=False, download=False)
    assert len(reads) == 3 * (len(data.TRAIN_BATCHES) + 1)
