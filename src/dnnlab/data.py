"""CIFAR-10 in its official python format: locate, download, verify, read, split, scale.

The official folder ``cifar-10-batches-py`` holds five training batches, a test
batch and ``batches.meta``, each a pickled dict (Krizhevsky, 2009,
https://www.cs.toronto.edu/~kriz/cifar.html). Images are rows of 3072 bytes:
1024 red, 1024 green, 1024 blue values of a 32x32 image in row-major order.

Where the folder is looked for, in order: an explicit ``data_dir``, the
``DNNLAB_DATA_DIR`` environment variable, the Keras cache (``~/.keras/datasets``,
both the Keras 2 and Keras 3 layouts) and dnnlab's own cache. Each place may be
the folder itself or its parent. If none has it but one of those places holds
the official archive (``cifar-10-python.tar.gz``, downloaded by hand, or the
archive Keras 2 or 3 left in its cache), the archive is checked against its
official md5 and unpacked beside itself (into dnnlab's cache if that place is
read-only). Only if there is no archive either is the official one downloaded
(``keras.utils.get_file``: progress bar, md5 check, safe extraction) into
``data_dir`` if one was given, else into dnnlab's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnlab.backend import cache_dir
from dnnlab.config import DataConfig
from dnnlab.errors import DataError

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
# The same archive under the names Keras's cifar10.load_data gives it (Keras 2, Keras 3).
ARCHIVE_NAMES = (ARCHIVE, "cifar-10-batches-py.tar.gz", "cifar-10-batches-py-target_archive")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "datasets"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The places searched for the CIFAR-10 folder, in order of precedence."""
    places: list[Path] = []
    if data_dir is not None:
        places.append(Path(data_dir).expanduser())
    if os.environ.get("DNNLAB_DATA_DIR"):
        places.append(Path(os.environ["DNNLAB_DATA_DIR"]).expanduser())
    keras = _keras_cache()
    places += [keras, keras / "cifar-10-batches-py-target", cache_dir()]
    return places


def _folder_in(place: Path) -> Path | None:
    """``place`` if it is a CIFAR-10 folder, else ``place/cifar-10-batches-py`` if that exists."""
    if (place / TRAIN_BATCHES[0]).exists() or (place / META).exists():
        return place
    if (place / FOLDER).is_dir():
        return place / FOLDER
    return None


def _archive_in(place: Path) -> Path | None:
    return next((place / n for n in ARCHIVE_NAMES if (place / n).is_file()), None)


def locate(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, check_md5: bool = True
) -> Path:
    """Return the CIFAR-10 folder; unpack an archive found in a searched place, else download one.

    ``check_md5=False`` unpacks a found archive without checking it (custom or test data).
    """
    places = candidate_dirs(data_dir)
    for place in places:
        folder = _folder_in(place)
        if folder is not None:
            missing = [f for f in (*TRAIN_BATCHES, TEST_BATCH, META) if not (folder / f).is_file()]
            if missing:
                raise DataError(
                    f"{folder} is an incomplete CIFAR-10 folder (missing {', '.join(missing)}); "
                    "delete it and run again to download the official archive, or copy the "
                    "official cifar-10-batches-py folder there"
                )
            return folder
    for place in places:
        archive = _archive_in(place)
        if archive is not None:
            return unpack_archive(archive, check_md5=check_md5)
    if not download:
        raise DataError(
            f"CIFAR-10 not found in {', '.join(map(str, places))}; pass --data-dir DIR "
            f"pointing at the folder that holds {FOLDER}, or set DNNLAB_DATA_DIR"
        )
    target = places[0] if data_dir is not None else cache_dir()
    return download_cifar10(target, searched=places)


def unpack_archive(archive: Path, *, check_md5: bool = True) -> Path:
    """Check ``archive`` against the official md5 and unpack it; return the CIFAR-10 folder.

    It is unpacked beside itself, or into dnnlab's cache if its folder is not
    writable. The archive itself is left where it is.
    """
    if check_md5:
        got = md5(archive)
        if got != ARCHIVE_MD5:
            raise DataError(
                f"{archive} is not the official CIFAR-10 archive (md5 {got}, official "
                f"{ARCHIVE_MD5}): it is truncated or corrupted; delete it and download {URL} "
                "again, or pass --no-md5 if it is your own data"
            )
    root = archive.parent if os.access(archive.parent, os.W_OK) else cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".cifar-10-unpack-", dir=root))
    except OSError as exc:
        raise DataError(
            f"cannot unpack {archive} into {root} ({exc.strerror}); "
            "unpack it by hand and pass --data-dir DIR"
        ) from None
    try:
        with tarfile.open(archive) as tar:
            _extract(tar, scratch, archive)
        unpacked = scratch / FOLDER
        if not unpacked.is_dir():
            raise DataError(f"{archive} does not contain {FOLDER}; it is not the CIFAR-10 archive")
        folder = root / FOLDER
        unpacked.rename(folder)
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DataError(
            f"unpacking {archive} into {root} failed ({' '.join(str(exc).split())}); "
            f"free space there or unpack it by hand so that DIR/{FOLDER} exists, then pass "
            "--data-dir DIR"
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _extract(tar: tarfile.TarFile, dest: Path, archive: Path) -> None:
    """Extract plain files and folders only, nothing outside ``dest`` (tarfile's "data" filter)."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tar.extractall(dest, filter="data")
        return
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
            raise DataError(f"{archive} holds an unsafe entry {member.name!r}; delete it")
    tar.extractall(dest)


def download_cifar10(root: Path, *, searched: list[Path] | None = None) -> Path:
    """Download and unpack the official archive into ``root/cifar-10-batches-py``."""
    import keras  # deferred: importing Keras is slow and only a download needs it here

    searched_text = f"CIFAR-10 not found in {', '.join(map(str, searched))}; " if searched else ""
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise OSError(f"{root} is not writable")
        extracted = keras.utils.get_file(
            fname="cifar-10-python.tar.gz",
            origin=URL,
            md5_hash=ARCHIVE_MD5,
            extract=True,
            cache_dir=str(root),
            cache_subdir="",
        )
    except Exception as exc:  # no network, HTTP error, wrong md5, disk full...
        message = " ".join(str(exc).split())
        raise DataError(
            f"{searched_text}downloading {URL} into {root} failed ({message}); "
            f"download it by hand and unpack it so that DIR/{FOLDER} exists, then pass "
            "--data-dir DIR or set DNNLAB_DATA_DIR"
        ) from None
    unpacked = Path(extracted) / FOLDER
    if not unpacked.is_dir():
        raise DataError(f"the archive from {URL} did not contain {FOLDER}; delete {extracted}")
    folder = root / FOLDER
    unpacked.rename(folder)
    shutil.rmtree(extracted, ignore_errors=True)
    (root / "cifar-10-python.tar.gz").unlink(missing_ok=True)
    return folder


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def verify(folder: Path, checksums: dict[str, str] = OFFICIAL_MD5) -> None:
    """Check every file against its md5, once: results are remembered by (size, mtime).

    The memo lives in dnnlab's cache (the data folder may be read-only). A file
    whose size or modification time changed is checked again.
    """
    folder = folder.resolve()
    memo_path = cache_dir() / "verified.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    known = memo.get(str(folder), {})
    stamps = {}
    for name, expected in checksums.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing; copy the official CIFAR-10 file there")
        stamps[name] = _stamp(path)
        if known.get(name) == stamps[name]:
            continue
        got = md5(path)
        if got != expected:
            raise DataError(
                f"{path} is truncated or corrupted (md5 {got}, official {expected}); "
                f"replace it with the official file, or delete {folder} to download it again"
            )
    memo[str(folder)] = stamps
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_name(f".{memo_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=1))
        os.replace(tmp, memo_path)
    except OSError:
        pass  # an unwritable cache only costs a re-check next time


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a data file cannot run code."""

    def find_class(self, module: str, name: str):
        numpy_part = module.split(".")[0] == "numpy" and name in {
            "_reconstruct",
            "ndarray",
            "dtype",
        }
        # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
        if numpy_part or (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 images of shape (n, 32, 32, 3), int32 labels of shape (n,))."""
    try:
        with open(path, "rb") as f:
            batch = _NumpyUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int32)
        images = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    except FileNotFoundError:
        raise DataError(f"{path} is missing; copy the official CIFAR-10 file there") from None
    except Exception as exc:
        raise DataError(
            f"{path} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
            "it is truncated or corrupted: replace it with the official file"
        ) from None
    if len(images) != len(labels):
        raise DataError(f"{path} has {len(images)} images but {len(labels)} labels; replace it")
    return np.ascontiguousarray(images), labels


def read_class_names(folder: Path) -> tuple[str, ...]:
    with open(folder / META, "rb") as f:
        meta = _NumpyUnpickler(f, encoding="bytes").load()
    return tuple(name.decode() for name in meta[b"label_names"])


# The batches decoded once into dnnlab's cache (DNNLAB_DECODED_DATA=0 turns it off): every
# later process maps the arrays from there (about 0.003 s) instead of unpickling and
# transposing the six batch files again (0.74-0.86 s). Costs 184 MB (177 MiB) of disk.
DECODED = os.environ.get("DNNLAB_DECODED_DATA", "1") != "0"
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _decoded_dir(folder: Path) -> Path:
    """Where ``folder``'s batches are kept decoded: one place per folder."""
    return cache_dir() / "decoded" / hashlib.sha1(str(folder).encode()).hexdigest()[:16]


def _read_decoded(folder: Path, stamps: dict) -> tuple | None:
    """The decoded arrays of ``folder`` (read-only maps), if decoded from files with ``stamps``."""
    place = _decoded_dir(folder)
    try:
        if json.loads((place / "stamps.json").read_text()) != stamps:
            return None
        return tuple(np.load(place / f"{name}.npy", mmap_mode="r") for name in _ARRAYS)
    except (OSError, ValueError):
        return None


def _write_decoded(folder: Path, stamps: dict, arrays: tuple) -> None:
    """Keep ``arrays`` decoded for the next process (stamps last: they mark them complete)."""
    place = _decoded_dir(folder)
    try:
        place.mkdir(parents=True, exist_ok=True)
        (place / "stamps.json").unlink(missing_ok=True)
        for name, array in zip(_ARRAYS, arrays, strict=True):
            tmp = place / f".{name}.{os.getpid()}.tmp.npy"
            np.save(tmp, array)
            os.replace(tmp, place / f"{name}.npy")
        tmp = place / f".stamps.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(stamps))
        os.replace(tmp, place / "stamps.json")
    except OSError:
        pass  # an unwritable cache only costs decoding again next time


def load_cifar10(
    data_dir: str | os.PathLike | None = None, *, check_md5: bool = True, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...]]:
    """``(x_train, y_train), (x_test, y_test), class_names`` as uint8 / int32 arrays.

    With :data:`DECODED` the arrays are read-only maps of the batches as decoded
    earlier (by any process) from files of the same sizes and modification times.
    """
    folder = locate(data_dir, download=download, check_md5=check_md5).resolve()
    if check_md5:
        verify(folder)
    stamps = {name: _stamp(folder / name) for name in (*TRAIN_BATCHES, TEST_BATCH)}
    arrays = _read_decoded(folder, stamps) if DECODED else None
    if arrays is None:
        parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
        x_test, y_test = read_batch(folder / TEST_BATCH)
        arrays = (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            x_test,
            y_test,
        )
        if DECODED:
            _write_decoded(folder, stamps, arrays)
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test), read_class_names(folder)


@dataclass(frozen=True)
class Splits:
    """Training, validation and test arrays (float32 features, int32 labels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def make_splits(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    config: DataConfig,
    class_names: tuple[str, ...] = (),
) -> Splits:
    """The book's split: validation = first ``validation_size`` training images, train = the rest.

    With ``config.standardize`` every feature is scaled as (x - mean) / std with
    mean and std of the training split only, so validation and test stay unseen.
    """
    x, y = train
    n_valid = config.validation_size
    if n_valid >= len(x):
        raise DataError(
            f"validation size {n_valid} leaves no training images (only {len(x)}); "
            "use a smaller --validation-size"
        )
    x_valid, y_valid = x[:n_valid], y[:n_valid]
    x_train, y_train = x[n_valid:], y[n_valid:]
    if config.train_size is not None:
        x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    arrays = [a.astype(np.float32) for a in (x_train, x_valid, test[0])]
    if config.standardize:
        mean = arrays[0].mean(axis=0)
        std = np.maximum(arrays[0].std(axis=0), 1e-7)
        arrays = [(a - mean) / std for a in arrays]
    return Splits(
        x_train=arrays[0],
        y_train=y_train,
        x_valid=arrays[1],
        y_valid=y_valid,
        x_test=arrays[2],
        y_test=test[1],
        class_names=class_names,
    )


def load_splits(
    config: DataConfig,
    data_dir: str | os.PathLike | None = None,
    *,
    check_md5: bool = True,
    download: bool = True,
) -> Splits:
    """Locate, verify, read and split CIFAR-10 in one call."""
    train, test, names = load_cifar10(data_dir, check_md5=check_md5, download=download)
    return make_splits(train, test, config, names)


def worker_options(data_dir: str | os.PathLike | None, check_md5: bool) -> list[str]:
    """The data options for worker processes: the CIFAR-10 folder found (or fetched) once, here."""
    folder = locate(data_dir, check_md5=check_md5)
    if check_md5:
        verify(folder)
    return ["--data-dir", str(folder), *([] if check_md5 else ["--no-md5"])]


class SplitCache:
    """Read CIFAR-10 once per cache, and make each DataConfig's splits once (raw and
    standardized differ)."""

    def __init__(self, data_dir: str | os.PathLike | None, check_md5: bool = True) -> None:
        self.data_dir, self.check_md5 = data_dir, check_md5
        self._cache: dict[DataConfig, Splits] = {}
        self._read: tuple | None = None

    def __call__(self, config: DataConfig) -> Splits:
        if config not in self._cache:
            train, test, names = self.read()
            self._cache[config] = make_splits(train, test, config, names)
        return self._cache[config]

    def read(self) -> tuple:
        """``load_cifar10``'s arrays and class names, read on the first call (read-only)."""
        if self._read is None:
            train, test, names = load_cifar10(self.data_dir, check_md5=self.check_md5)
            for array in (*train, *test):
                array.flags.writeable = False  # the splits' labels are views of them
            self._read = (train, test, names)
        return self._read

    def loader(self, config: DataConfig) -> Callable[[], Splits]:
        """A no-argument loader for ``config`` (what :func:`dnnlab.runs.execute` takes)."""
        return lambda: self(config)
