"""The config's model choice → a detector and an embedder; callers never branch on backend."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import Config, models_dir
from . import install, runtime
from .base import Detector, Embedder, ModelError
from .digests import sha256_of
from .scrfd import ScrfdDetector, make_dynamic

EMBEDDED = "embedded"
PACK_HINT = (
    "put the pack's .onnx files there (insightface's buffalo_l or antelopev2), "
    "or use the embedded models with --models embedded"
)


def pack_folder(config: Config, pack: str) -> Path:
    """A pack given as a folder path, or by name under the insightface packs folder."""
    as_path = Path(pack).expanduser()
    if as_path.is_dir() or "/" in pack:
        return as_path
    return Path(config.models.packs_dir).expanduser() / pack


def _classify(path: Path) -> str:
    """'detector', 'recogniser' or 'other', from the ONNX file's inputs and outputs."""
    sess = runtime.session(path)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(outputs) in (6, 9) and len(inputs) == 1:
        return "detector"
    shape = inputs[0].shape
    if len(outputs) == 1 and len(shape) == 4 and shape[2:] == [112, 112]:
        return "recogniser"
    return "other"


def _load_pack(config: Config, pack: str, device: int | None) -> tuple[Detector, Embedder]:
    from .arcface_onnx import ArcFaceOnnxEmbedder

    folder = pack_folder(config, pack)
    files = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    if not files:
        raise ModelError(f"model pack {pack!r}: no .onnx files in {folder} ({PACK_HINT})")
    roles: dict[str, Path] = {}
    for path in files:
        roles.setdefault(_classify(path), path)
    if "detector" not in roles or "recogniser" not in roles:
        missing = "detector (det_*.onnx)" if "detector" not in roles else "recogniser"
        raise ModelError(f"model pack {pack!r} in {folder} has no {missing} ({PACK_HINT})")
    det_path = roles["detector"]
    # Stock pack detectors are exported with batch 1; a freed copy lets frames batch on the GPU.
    freed = models_dir(config) / "cache" / f"{sha256_of(det_path)[:16]}-{det_path.name}"
    if not freed.is_file():
        make_dynamic(det_path, freed)
    detector = ScrfdDetector(freed, name=f"{folder.name}:{det_path.stem}", device=device)
    embedder = ArcFaceOnnxEmbedder(
        roles["recogniser"], name=f"{folder.name}:{roles['recogniser'].stem}", device=device
    )
    return detector, embedder


def load_embedded(config: Config, device: int | None = None) -> tuple[Detector, Embedder]:
    """SCRFD from the scrfd sdist and dlib's ResNet port: nothing but registry packages."""
    from .dlib_resnet import DlibResNetEmbedder, default_dat_path

    root = models_dir(config)
    det_path, name = install.detector_path(root), "scrfd-0.3.0"
    if not det_path.is_file():
        raise ModelError(
            f"embedded detector not installed at {det_path} (run `reelface models install`)"
        )
    # An install from before an int8 copy existed keeps float32 (`models list` says "missing");
    # one made by another onnxruntime release is rebuilt first (seconds, nothing downloaded).
    cpu_int8 = config.models.cpu_int8 and not runtime.cuda_available()
    graphs = {}
    for which in install.INT8_FILES:
        int8 = install.int8_path(root, which)
        if cpu_int8 and int8.is_file():
            if install.int8_stale(root, which):
                install.build_int8(root, which)
            graphs[which] = int8
    if "detector" in graphs:
        det_path, name = graphs["detector"], "scrfd-0.3.0-int8"
    return ScrfdDetector(det_path, name=name, device=device), DlibResNetEmbedder(
        default_dat_path(), root / "cache", device=device, graph=graphs.get("embedder")
    )


def float32(config: Config) -> Config:
    """The config with the embedded detector in float32 on every machine.

    For the evaluation protocol and swaps of single photos: their numbers must not depend on
    whether the machine had a GPU, and a handful of photos gains nothing from int8.
    """
    return replace(config, models=replace(config.models, cpu_int8=False))


def load(
    config: Config, pack: str | None = None, device: int | None = None
) -> tuple[Detector, Embedder]:
    """The detector and embedder the config (or `pack`) names, on GPU `device` if given."""
    chosen = pack or config.models.pack
    if chosen == EMBEDDED:
        return load_embedded(config, device)
    return _load_pack(config, chosen, device)
