"""The files that describe an export: its manifest (read back, and as CSV) and its zip, whose
bytes depend only on the files."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from reelface.errors import ReelfaceError

FORMAT = "reelface-export"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no wall-clock in the archive


class ExportError(ReelfaceError, RuntimeError):
    """An export or training root that cannot be written; the message names the fix."""


def manifest_csv(entries: list[dict]) -> bytes:
    buffer = io.StringIO()
    columns = [
        "file",
        "sha256",
        "identity",
        "folder",
        "face_id",
        "film",
        "frame",
        "time",
        "box",
        "landmarks",
        "reasons",
        "passed",
        "decision",
        "detector",
        "embedder",
    ]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for e in entries:
        for kind, rel in sorted(e["files"].items()):
            writer.writerow(
                [
                    rel,
                    e["sha256"][kind],
                    e["identity"],
                    e["folder"],
                    e["face_id"],
                    e["film"],
                    e["frame"],
                    e["time"],
                    json.dumps(e["box"]),
                    json.dumps(e["landmarks"]),
                    "; ".join(e["reasons"]),
                    e["passed"],
                    e["decision"] or "",
                    e["detector"],
                    e["embedder"],
                ]
            )
    return buffer.getvalue().encode()


def write_zip(root: Path, path: Path, names: list[str]) -> None:
    """A zip whose bytes depend only on the files: fixed dates and modes, sorted entries."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            packed = name.endswith((".json", ".csv"))  # images do not compress further
            info.compress_type = zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED
            archive.writestr(info, (root / name).read_bytes())


def read_manifest(folder: Path) -> dict:
    """The manifest of an export folder, checked to be ours."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExportError(
            f"{path}: not a reelface export ({error}); export with `reelface export`"
        ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{path}: not a reelface export manifest; export with `reelface export`")
    return manifest
