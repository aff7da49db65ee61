"""Data-set export: identity folders at the stored FFHQ size and 224 ArcFace-aligned, a manifest
with provenance and checksums, an optional zip; training roots that link exports beside VGGFace2.

Reproducible by construction: files are written in a fixed order with fixed encoder settings,
the manifest holds no time, and zip entries carry a fixed date; only the catalogue's exports row
records when it ran. Everything is written under a temporary sibling folder renamed at the end.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reelface import catalogue
from reelface.config import Config
from reelface.dataset.manifest import (  # noqa: F401  (FORMAT, read_manifest: names of export)
    FORMAT,
    ExportError,
    manifest_csv,
    read_manifest,
    write_zip,
)
from reelface.identity import decisions
from reelface.io import atomic_folder, encode, sha256_file
from reelface.pipeline import align

FFHQ_DIR = "ffhq"
ARCFACE_DIR = "arcface224"
ARCFACE_SIZE = 224
JPEG_QUALITY = 95
# Encoder setting per format: JPEG quality, PNG zlib level.
_QUALITY = {"jpg": JPEG_QUALITY, "png": 6}


@dataclass(frozen=True)
class ExportOptions:
    reviewed_only: bool = False  # only faces a person kept (else: not discarded and passing)
    sizes: tuple[str, ...] = (FFHQ_DIR, ARCFACE_DIR)
    image_format: str = "jpg"  # of the 224 crops: the SimSwap trainer reads only *.jpg
    zip_name: str | None = None
    identities: tuple[int, ...] = ()  # empty = every identity with faces


@dataclass
class ExportResult:
    path: Path
    identities: int
    faces: int
    files: int
    manifest_sha256: str
    zip_path: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)  # why faces stayed out → how many
    recorded: bool = True  # False: the catalogue was read-only, the export is not in its history


def folder_name(identity: int, name: str | None) -> str:
    """Identity folder: its name made file-safe, else id00042; ids are global, so unique."""
    if name:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
        if safe:
            return safe
    return f"id{identity:05d}"


# Why a face of the catalogue is not in an export, in the words the summary prints.
NOT_CLUSTERED = "not clustered (run `reelface cluster --all`)"
UNSORTED = "unsorted by clustering (assign them to a person in the review)"
DISCARDED = "discarded by a person"
FLAGGED = "flagged by a rule and not kept by a person"
NOT_REVIEWED = "passing but not kept by a person (--reviewed-only)"
SUPERSEDED = "of a film superseded by a longer copy (see `reelface films`)"
DUPLICATE = "byte-identical to a crop already exported (one copy kept)"
# The write errors that say "this target cannot take the export", each with its fix.
_FREE = "free space there or choose another target folder"
_OTHER = "choose another target folder (or fix its permissions)"
_TARGET_ERRORS = {
    errno.ENOSPC: ("disk full", _FREE),
    errno.EDQUOT: ("disk quota exceeded", _FREE),
    errno.EROFS: ("read-only file system", _OTHER),
    errno.EACCES: ("permission denied", _OTHER),
    errno.EPERM: ("permission denied", _OTHER),
}


class TargetUnwritable(ExportError):
    """The export's target cannot be written (full, over quota, read-only); nothing was left."""


def select(
    conn: sqlite3.Connection, options: ExportOptions
) -> tuple[dict[int, list[dict]], decisions.State, Counter]:
    """identity → face rows to export, in id order, and how many were left out for what reason."""
    st = decisions.state(conn)
    views = decisions.view(conn, st)
    rows = {
        r["id"]: dict(r)
        for r in conn.execute(
            """SELECT x.*, f.slug, f.path AS film_path, f.content_hash, f.kind AS film_kind,
               f.superseded_by, d.name AS detector, d.sha256 AS detector_sha256, e.name AS embedder,
               e.sha256 AS embedder_sha256 FROM faces x JOIN films f ON f.id = x.film_id
               JOIN models d ON d.id = x.detector_id JOIN models e ON e.id = x.embedder_id"""
        )
    }
    chosen: dict[int, list[dict]] = {}
    left_out: Counter = Counter()
    clustered = {r[0] for r in conn.execute("SELECT DISTINCT film_id FROM cluster_runs")}
    for v in views.values():
        if options.identities and v.identity not in options.identities:
            continue  # asked for other identities only: not "left out"
        if rows[v.face_id]["superseded_by"] is not None:  # its copy's face is the one to use
            left_out[SUPERSEDED] += 1
            continue
        if v.verdict == "discard":
            left_out[DISCARDED] += 1
            continue
        if v.identity is None:
            left_out[UNSORTED if rows[v.face_id]["film_id"] in clustered else NOT_CLUSTERED] += 1
            continue
        passed = bool(rows[v.face_id]["passed"])
        if v.verdict == "keep" or (not options.reviewed_only and passed):
            chosen.setdefault(v.identity, []).append(rows[v.face_id])
        else:
            left_out[NOT_REVIEWED if passed else FLAGGED] += 1
    for identity in options.identities:
        if st.resolve(identity) != identity:
            raise ExportError(
                f"identity {identity} was merged into {st.resolve(identity)}: export that one"
            )
        if identity not in chosen:
            rule = "kept by a person" if options.reviewed_only else "passing and not discarded"
            raise ExportError(
                f"identity {identity} has no faces {rule} (see `reelface identities`); "
                "leave it out or keep some of its faces"
            )
    return {k: sorted(v, key=lambda r: r["id"]) for k, v in sorted(chosen.items())}, st, left_out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export(
    ws_root: Path, conn: sqlite3.Connection, out: Path, config: Config, options: ExportOptions
) -> ExportResult:
    """Write the data set to `out` (absent or empty) atomically and record it in the catalogue."""
    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not empty: choose a new folder or empty it")
    if options.image_format not in ("jpg", "png"):
        raise ExportError(f"unknown image format {options.image_format!r}: use jpg or png")
    chosen, st, left_out = select(conn, options)
    if not chosen:
        why = "; ".join(f"{n} {reason}" for reason, n in left_out.most_common()) or "no faces"
        raise ExportError(f"nothing to export: {why}")
    # Check every source before writing anything, so a bad catalogue leaves no partial export.
    for faces in chosen.values():
        for row in faces:
            crop = ws_root / row["crop_path"]
            if not crop.is_file():
                raise ExportError(
                    f"crop file missing: {crop} (face {row['id']}); re-extract its film with "
                    f"`reelface extract {row['film_path']} --force`"
                )
    chosen = _drop_duplicates(ws_root, chosen, st, left_out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        result = atomic_folder(out, lambda tmp: _write(ws_root, tmp, chosen, st, config, options))
    except OSError as error:
        elsewhere = error.filename and not str(error.filename).startswith(str(out.parent))
        if error.errno not in _TARGET_ERRORS or elsewhere:  # e.g. a crop that cannot be read
            raise
        what, fix = _TARGET_ERRORS[error.errno]
        raise TargetUnwritable(
            f"cannot write the export to {out}: {what}, nothing was left there; {fix}"
        ) from error
    result.path = out
    if result.zip_path is not None:
        result.zip_path = out / result.zip_path.name
    result.left_out = dict(left_out.most_common())
    try:
        catalogue.add_export(conn, out, asdict(options), result.manifest_sha256, result.counts)
    except sqlite3.OperationalError as error:
        if not catalogue.is_read_only(error):
            raise
        result.recorded = False  # exporting from a read-only workspace is reading it
    return result


def _drop_duplicates(
    ws_root: Path, chosen: dict[int, list[dict]], st: decisions.State, left_out: Counter
) -> dict[int, list[dict]]:
    """One face per crop content (SHA-256): the same picture twice, from two copies of a film or
    under two identities, would make one person two training identities. A kept copy wins."""
    faces = [row for rows in chosen.values() for row in rows]
    faces.sort(key=lambda r: (st.verdict.get(r["id"]) != "keep", r["id"]))
    seen: set[str] = set()
    dropped: set[int] = set()
    for row in faces:
        digest = sha256_file(ws_root / row["crop_path"])
        if digest in seen:
            dropped.add(row["id"])
        seen.add(digest)
    left_out[DUPLICATE] += len(dropped)
    if not dropped:
        del left_out[DUPLICATE]
        return chosen
    kept = {k: [r for r in v if r["id"] not in dropped] for k, v in chosen.items()}
    return {k: v for k, v in kept.items() if v}


def _write(
    ws_root: Path,
    tmp: Path,
    chosen: dict[int, list[dict]],
    st: decisions.State,
    config: Config,
    options: ExportOptions,
) -> ExportResult:
    entries: list[dict] = []
    files: dict[str, bytes | Path] = {}
    models: dict[str, dict] = {}
    films: dict[str, dict] = {}
    folders = []
    for identity, faces in chosen.items():
        folder = folder_name(identity, st.names.get(identity))
        folders.append(
            {
                "identity": identity,
                "name": st.names.get(identity),
                "folder": folder,
                "faces": len(faces),
            }
        )
        for row in faces:
            stem = f"{row['slug']}_{row['frame']:07d}_{row['slot']}"
            crop_path = ws_root / row["crop_path"]
            outputs: dict[str, str] = {}
            if FFHQ_DIR in options.sizes:
                rel = f"{FFHQ_DIR}/{folder}/{stem}{crop_path.suffix}"
                files[rel] = crop_path  # the stored crop, byte for byte
                outputs[FFHQ_DIR] = rel
            if ARCFACE_DIR in options.sizes:
                rgb = cv2.cvtColor(cv2.imread(str(crop_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                small = align.crop_from_crop(
                    rgb, np.array(json.loads(row["landmarks_crop"])), align.ARCFACE, ARCFACE_SIZE
                )
                rel = f"{ARCFACE_DIR}/{folder}/{stem}.{options.image_format}"
                files[rel] = encode(
                    small, f".{options.image_format}", _QUALITY[options.image_format]
                )
                outputs[ARCFACE_DIR] = rel
            verdict = st.verdict.get(row["id"])
            entries.append(
                {
                    "face_id": row["id"],
                    "identity": identity,
                    "folder": folder,
                    "files": outputs,
                    "film": row["slug"],
                    "frame": row["frame"],
                    "time": row["pts"],
                    "source": row["source"],
                    "box": json.loads(row["box"]),
                    "landmarks": json.loads(row["landmarks"]),
                    "landmarks_crop": json.loads(row["landmarks_crop"]),
                    "matrix": json.loads(row["matrix"]),
                    "crop_size": row["crop_size"],
                    "measures": json.loads(row["measures"]),
                    "reasons": json.loads(row["reasons"]),
                    "passed": bool(row["passed"]),
                    "decision": verdict,
                    "decision_id": st.verdict_by.get(row["id"]),
                    "detector": row["detector"],
                    "embedder": row["embedder"],
                }
            )
            films[row["slug"]] = {
                "slug": row["slug"],
                "path": row["film_path"],
                "content_hash": row["content_hash"],
                "kind": row["film_kind"],
            }
            for role in ("detector", "embedder"):
                models[row[role]] = {
                    "role": role,
                    "name": row[role],
                    "sha256": row[f"{role}_sha256"],
                }
    checksums: dict[str, str] = {}
    for rel in sorted(files):
        data = files[rel]
        if isinstance(data, Path):
            data = data.read_bytes()
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        checksums[rel] = _sha(data)
    for entry in entries:
        entry["sha256"] = {k: checksums[v] for k, v in entry["files"].items()}
    manifest = {
        "format": FORMAT,
        "version": 1,
        "options": {**asdict(options), "jpeg_quality": JPEG_QUALITY},
        "rules": asdict(config.rules),
        "cluster": asdict(config.cluster),
        "models": [models[k] for k in sorted(models)],
        "films": [films[k] for k in sorted(films)],
        "identities": folders,
        "faces": entries,
        "checksums": checksums,
    }
    manifest_bytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    (tmp / "manifest.json").write_bytes(manifest_bytes)
    (tmp / "manifest.csv").write_bytes(manifest_csv(entries))
    zip_path = None
    if options.zip_name:
        name = options.zip_name if options.zip_name.endswith(".zip") else options.zip_name + ".zip"
        zip_path = tmp / Path(name).name
        write_zip(tmp, zip_path, sorted(files) + ["manifest.csv", "manifest.json"])
    return ExportResult(
        path=tmp,
        identities=len(chosen),
        faces=len(entries),
        files=len(files),
        manifest_sha256=_sha(manifest_bytes),
        zip_path=zip_path,
        counts={"identities": len(chosen), "faces": len(entries), "files": len(files)},
    )


# ---------------------------------------------------------------------------------------------
# Training roots


def train_root(out: Path, exports: list[Path], vggface: Path | None = None) -> dict[str, int]:
    """A folder of identity folders: symlinks to each export's 224 identities and, if given,
    every identity of a VGGFace2-224 root beside them; nothing is copied."""
    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not empty: choose a new folder or empty it")
    links: dict[str, Path] = {}
    if vggface is not None:
        vggface = vggface.expanduser().resolve()
        if not vggface.is_dir():
            raise ExportError(f"{vggface}: no such folder (the VGGFace2-224 root)")
        for child in sorted(vggface.iterdir()):
            if child.is_dir():
                links[child.name] = child
    for export in exports:
        export = export.expanduser().resolve()
        read_manifest(export)
        faces = export / ARCFACE_DIR
        if not faces.is_dir():
            raise ExportError(f"{export} has no {ARCFACE_DIR}/ folder: export with the 224 size")
        for child in sorted(faces.iterdir()):
            name = f"{export.name}_{child.name}"
            if name in links:
                raise ExportError(
                    f"identity folder {name} twice (from {links[name]} and {child}): "
                    "rename one export folder"
                )
            links[name] = child

    def link(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for name, target in sorted(links.items()):
            (tmp / name).symlink_to(target, target_is_directory=True)

    atomic_folder(out, link)
    ours = len(links) - (
        sum(1 for c in vggface.iterdir() if c.is_dir()) if vggface is not None else 0
    )
    return {"identities": len(links), "exported": ours}
