"""Reading a group's zip: which entries are faces of which identity, its manifest, and unpacking
with checksums. Nothing is written to the workspace here."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reelface.dataset.export import ARCFACE_DIR, FFHQ_DIR, FORMAT
from reelface.errors import ReelfaceError
from reelface.pipeline import decode

# Left by archivers and file browsers, never faces.
JUNK = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}
CHUNK = 1 << 20


class ArchiveError(ReelfaceError, RuntimeError):
    """A zip that cannot be imported; the message names the file and the fix."""


@dataclass(frozen=True)
class Member:
    """One image of the archive and where it goes: identity folder and file name."""

    info: zipfile.ZipInfo
    folder: str  # the group's identity folder (nested folders joined with '_')
    name: str  # file name, kept


@dataclass
class Plan:
    """What an archive holds, checked: images by identity folder and the entries left aside."""

    kind: str  # "reelface-export" or "folders"
    members: list[Member]
    manifest: dict | None = None
    prefix: str = ""  # path of the manifest's folder inside the archive ("" = root)
    ignored: int = 0  # entries that are not images in an identity folder


# ---------------------------------------------------------------------------------------------
# Reading and checking the archive (nothing is written here)


def _entry_parts(archive: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The entry's path components, or ArchiveError for anything that could escape the folder."""
    raw = info.filename
    name = raw.replace("\\", "/")  # zips made on Windows sometimes use backslashes
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(
            f"{archive}: entry {raw!r} has an absolute path; refusing it "
            "(ask the group to zip the identity folders themselves)"
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(
            f"{archive}: entry {raw!r} points outside the archive ('..'); refusing it "
            "(ask the group for a zip of the identity folders)"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(
            f"{archive}: entry {raw!r} is a symbolic link; refusing it "
            "(ask the group to zip the files, not links to them)"
        )
    return parts


def _is_image(parts: tuple[str, ...]) -> bool:
    return PurePosixPath(parts[-1]).suffix.lower() in decode.IMAGE_SUFFIXES


def _junk(parts: tuple[str, ...]) -> bool:
    return any(p in JUNK or p.startswith(".") for p in parts)


def read_plan(archive: Path, zf: zipfile.ZipFile) -> Plan:
    """Check every entry and sort the images into identity folders."""
    entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    for info in zf.infolist():
        parts = _entry_parts(archive, info)
        if not parts or info.is_dir():
            continue
        if parts in seen:
            raise ArchiveError(f"{archive}: entry {info.filename!r} twice; ask for a new zip")
        seen.add(parts)
        entries.append((info, parts))
    usable = [(i, p) for i, p in entries if not _junk(p)]
    manifest = _find_manifest(archive, zf, usable)
    if manifest is not None:
        return _export_plan(archive, usable, *manifest)
    images = [(i, p) for i, p in usable if _is_image(p)]
    foldered = [(i, p) for i, p in images if len(p) > 1]
    if not foldered:
        what = "images at its top level only" if images else "no images"
        raise ArchiveError(
            f"{archive}: {what}, no identity folders; expected one folder of face images per "
            "identity (e.g. actor01/0001.png)"
        )
    # A wrapper folder shared by every image (group07_final/actor01/x.png) is not an identity.
    common = list(foldered[0][1][:-2])
    for _, parts in foldered:
        keep = 0
        while keep < len(common) and keep < len(parts) - 2 and parts[keep] == common[keep]:
            keep += 1
        common = common[:keep]
    members = [Member(i, "_".join(p[len(common) : -1]), p[-1]) for i, p in foldered]
    return Plan("folders", members, ignored=len(entries) - len(members))


def _find_manifest(
    archive: Path, zf: zipfile.ZipFile, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]
) -> tuple[dict, tuple[str, ...]] | None:
    """Our export's manifest (the shallowest manifest.json that says so) and its folder."""
    found = sorted((len(p), p, i) for i, p in entries if p[-1] == "manifest.json")
    for _, parts, info in found:
        try:
            manifest = json.loads(zf.read(info))
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError):
            continue  # someone else's manifest or a damaged one: judge the folders instead
        if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
            return manifest, parts[:-1]
    return None


def _export_plan(
    archive: Path,
    entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    manifest: dict,
    prefix: tuple[str, ...],
) -> Plan:
    """Our own export: the FFHQ crops (the 224 copies are derived from them), else the 224s."""
    n = len(prefix)
    under = [(i, p) for i, p in entries if p[:n] == prefix and len(p) == n + 3 and _is_image(p)]
    for size in (FFHQ_DIR, ARCFACE_DIR):
        members = [Member(i, p[n + 1], p[-1]) for i, p in under if p[n] == size]
        if members:
            return Plan(
                FORMAT, members, manifest, "/".join(prefix), ignored=len(entries) - len(members)
            )
    raise ArchiveError(
        f"{archive}: a reelface export with no {FFHQ_DIR}/ or {ARCFACE_DIR}/ identity folders; "
        "export again with `reelface export --zip`"
    )


def manifest_decisions(plan: Plan) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """What a person decided in the exporting workspace, from our export's manifest:
    (identity folder, file name) → keep | discard, and identity folder → the identity's name."""
    verdicts: dict[tuple[str, str], str] = {}
    names: dict[str, str] = {}
    if plan.manifest is None:
        return verdicts, names
    for face in plan.manifest.get("faces", []):
        if face.get("decision") not in ("keep", "discard"):
            continue
        for rel in face.get("files", {}).values():  # either size: the folders are the same
            parts = PurePosixPath(str(rel)).parts
            if len(parts) == 3:
                verdicts[parts[1], parts[2]] = face["decision"]
    for identity in plan.manifest.get("identities", []):
        if identity.get("name") and identity.get("folder"):
            names[str(identity["folder"])] = str(identity["name"])
    return verdicts, names


# ---------------------------------------------------------------------------------------------
# Unpacking and deduplicating (into a temporary folder inside the workspace)


def unpack(archive: Path, zf: zipfile.ZipFile, plan: Plan, tmp: Path) -> dict[str, str]:
    """Write every planned image under tmp/<folder>/<name>; relative path → SHA-256."""
    need = sum(m.info.file_size for m in plan.members)
    free = shutil.disk_usage(tmp.parent).free
    if need > free:
        raise ArchiveError(
            f"{archive}: needs {need / 1e9:.1f} GB to unpack, {free / 1e9:.1f} GB free in "
            f"{tmp.parent}; free space and run the same command"
        )
    sums: dict[str, str] = {}
    for member in plan.members:
        rel = f"{member.folder}/{member.name}"
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            with zf.open(member.info) as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise ArchiveError(
                f"{archive}: damaged entry {member.info.filename!r} ({error}); "
                "the zip is corrupt or truncated, ask for a new copy"
            ) from error
        sums[rel] = digest.hexdigest()
    if plan.manifest is not None:
        _check_manifest(archive, plan, sums)
    return sums


def _check_manifest(archive: Path, plan: Plan, sums: dict[str, str]) -> None:
    """Our export lists a checksum per file: a mismatch means the archive was damaged."""
    listed = plan.manifest.get("checksums", {}) if plan.manifest else {}
    for member in plan.members:
        inner = "/".join(PurePosixPath(member.info.filename.replace("\\", "/")).parts)
        rel = inner[len(plan.prefix) + 1 :] if plan.prefix else inner
        expected = listed.get(rel)
        if expected is not None and expected != sums[f"{member.folder}/{member.name}"]:
            raise ArchiveError(
                f"{archive}: {member.info.filename} does not match its manifest checksum "
                "(damaged archive); ask the group for a new zip"
            )
