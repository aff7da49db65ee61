"""Other groups' submissions into the catalogue: checked unpacking, deduplication by SHA-256,
extraction per identity folder, the group's folders as identities, links to known identities.

Each identity folder becomes one "images" film (see `import_archive` for why). The archive is
unpacked into a hidden folder inside the workspace and renamed into `imports/<slug>/` only once
every entry is checked; if extraction or the catalogue write fails, the films, crops and folder
this import made are removed again, so nothing is ever half-imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TypeVar

import numpy as np

from reelface import catalogue
from reelface.catalogue import transaction
from reelface.dataset.archive import ArchiveError, Plan, manifest_decisions, read_plan, unpack
from reelface.dataset.export import FFHQ_DIR, FORMAT
from reelface.identity import cluster, decisions, identify
from reelface.io import sha256_file, temp_name
from reelface.pipeline import decode
from reelface.pipeline.extract import Extractor
from reelface.pipeline.thumbs import thumbs_of
from reelface.workspace import Workspace, slugify

IMPORTS_DIR = "imports"
METHOD = "import"  # cluster_runs.method of the assignments an import records
OWN_THRESHOLD = 0.3  # detector score that finds again the 17%-cut-off faces of the test film
T = TypeVar("T")


@dataclass
class IdentityImport:
    """One identity folder of an archive as it entered the catalogue."""

    folder: str
    name: str
    identity: int | None  # None when every file was a duplicate or no face was found
    film_id: int | None
    files: int
    faces: int


@dataclass
class ImportResult:
    """What importing one archive did."""

    archive: Path
    state: str  # imported | already
    slug: str
    group: str
    import_id: int
    folder: Path | None = None
    identities: list[IdentityImport] = field(default_factory=list)
    files: int = 0  # images in identity folders
    duplicates: int = 0  # identical to a file already imported (or a crop of this workspace)
    faces: int = 0  # faces assigned to the group's identities
    decisions: int = 0  # faces given the keep/discard a person recorded in our export's manifest
    lost: list[str] = field(default_factory=list)  # images with a decision but no face found
    no_face: int = 0  # images where no face large enough was found
    ignored: int = 0  # other entries (manifests, 224 copies, text files…)
    links: list[tuple[int, int, float]] = field(default_factory=list)


def imported_checksums(conn: sqlite3.Connection) -> set[str]:
    """SHA-256 of every file earlier imports brought in (kept in imports.counts)."""
    out: set[str] = set()
    for (counts,) in conn.execute("SELECT counts FROM imports"):
        out.update(json.loads(counts).get("checksums", {}).values())
    return out


def _own_crop_sums(
    ws: Workspace, conn: sqlite3.Connection, plan: Plan, sums: dict[str, str]
) -> set[str]:
    """Files of our own export that are byte-identical to crops this workspace already holds."""
    if plan.manifest is None:
        return set()
    local = {}
    for film in plan.manifest.get("films", []):
        row = catalogue.find_film(conn, str(film.get("content_hash", "")))
        if row is not None:
            local[film.get("slug")] = ws.film_dir(row["slug"]) / "faces"
    same: set[str] = set()
    if not local:
        return same
    for face in plan.manifest.get("faces", []):
        folder = local.get(face.get("film"))
        rel = face.get("files", {}).get(FFHQ_DIR)
        if folder is None or not rel:
            continue
        # Export names a crop <film slug>_<frame>_<slot><suffix>; the workspace <frame>_<slot>.
        stem = PurePosixPath(rel).name[len(face["film"]) + 1 :]
        crop = folder / stem
        key = "/".join(PurePosixPath(rel).parts[1:])
        if key in sums and crop.is_file() and sha256_file(crop) == sums[key]:
            same.add(sums[key])
    return same


def _dedupe(tmp: Path, sums: dict[str, str], known: set[str]) -> tuple[dict[str, str], int]:
    """Remove files already known or repeated in this archive; the kept ones and the count."""
    kept: dict[str, str] = {}
    seen = set(known)
    skipped = 0
    for rel in sorted(sums):
        if sums[rel] in seen:
            (tmp / rel).unlink()
            skipped += 1
        else:
            seen.add(sums[rel])
            kept[rel] = sums[rel]
    return kept, skipped


# ---------------------------------------------------------------------------------------------
# Importing


def import_archive(
    ws: Workspace, extractor: Extractor, archive: Path, group: str | None = None
) -> ImportResult:
    """Import one zip: a no-op for a zip imported before, else every identity folder.

    One film of kind "images" per identity folder, not per archive: the extractor reads a flat
    folder and keeps each file name as the face's source; an identity belongs to one film as the
    schema's identities.film_id expects; and suggest_links, which links identities of different
    films, then also finds one actor split over two folders of the same submission.
    """
    archive = archive.expanduser().resolve()
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such file (name a .zip the group submitted)")
    digest = sha256_file(archive)
    slug = slugify(archive, digest)
    group = (group or archive.stem).strip() or archive.stem
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        row = conn.execute("SELECT * FROM imports WHERE sha256 = ?", (digest,)).fetchone()
        if row is not None:
            counts = json.loads(row["counts"])
            return ImportResult(
                archive,
                "already",
                counts.get("slug", slug),
                counts.get("group", group),
                int(row["id"]),
            )
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ArchiveError(
                f"{archive}: not a readable zip ({error}); the file is corrupt or truncated, "
                "ask for a new copy"
            ) from error
        with zf:
            plan = read_plan(archive, zf)
            return _import(ws, conn, extractor, archive, digest, slug, group, zf, plan)
    finally:
        conn.close()


def _import(ws, conn, extractor, archive, digest, slug, group, zf, plan) -> ImportResult:
    root = ws.root / IMPORTS_DIR
    root.mkdir(exist_ok=True)
    final = root / slug
    tmp = temp_name(final)
    shutil.rmtree(tmp, ignore_errors=True)
    made_films: list[tuple[int, str]] = []
    try:
        tmp.mkdir()
        sums = unpack(archive, zf, plan, tmp)
        known = imported_checksums(conn) | _own_crop_sums(ws, conn, plan, sums)
        kept, duplicates = _dedupe(tmp, sums, known)
        if final.exists():  # left by an import whose catalogue write never happened
            shutil.rmtree(final)
        os.rename(tmp, final)
        result = ImportResult(archive, "imported", slug, group, 0, final)
        result.files, result.duplicates, result.ignored = len(sums), duplicates, plan.ignored
        films = _own_threshold(
            extractor, plan, lambda: _extract_folders(ws, conn, extractor, final, made_films)
        )
        _record(ws, conn, result, digest, films, kept, manifest_decisions(plan))
        return result
    except BaseException:
        _undo(ws, conn, made_films, tmp, final)
        raise


def _own_threshold(extractor: Extractor, plan: Plan, run: Callable[[], T]) -> T:
    """Run with the detector's threshold at most OWN_THRESHOLD for our own export's crops: each
    holds a face found before, which its crop (black padding, a cut edge) may score lower."""
    config = extractor.config
    if plan.kind == FORMAT:
        lower = min(config.extract.threshold, OWN_THRESHOLD)
        extractor.config = replace(config, extract=replace(config.extract, threshold=lower))
    try:
        return run()
    finally:
        extractor.config = config


def _extract_folders(
    ws: Workspace,
    conn: sqlite3.Connection,
    extractor: Extractor,
    final: Path,
    made: list[tuple[int, str]],
) -> dict[str, tuple[int | None, int]]:
    """identity folder → (film id or None, images kept); films made are added to `made`."""
    out: dict[str, tuple[int | None, int]] = {}
    for folder in sorted(p for p in final.iterdir() if p.is_dir()):
        images = decode.image_files(folder)
        if not images:  # every file was a duplicate
            folder.rmdir()
            out[folder.name] = (None, 0)
            continue
        info = decode.probe(folder)
        row = catalogue.find_film(conn, info.content_hash)
        # A film of this very folder is a killed run of this import (resumed below); a film of
        # the same images elsewhere means they are in the catalogue already.
        if row is not None and Path(row["path"]).parent != final:
            out[folder.name] = (None, 0)
            continue
        result = extractor.run(folder, info=info)
        made.append((result.film_id, result.slug))
        out[folder.name] = (result.film_id, len(images))
    return out


def _main_faces(conn: sqlite3.Connection, film_id: int) -> tuple[list[int], list[int], np.ndarray]:
    """All face ids of a film, the largest face of each image (the folder's person), embeddings."""
    rows = conn.execute(
        "SELECT id, frame, box, embedding FROM faces WHERE film_id = ? ORDER BY id", (film_id,)
    ).fetchall()
    best: dict[int, tuple[float, int]] = {}
    for r in rows:
        x0, y0, x1, y1 = json.loads(r["box"])[:4]
        area = (x1 - x0) * (y1 - y0)
        if r["frame"] not in best or area > best[r["frame"]][0]:
            best[r["frame"]] = (area, r["id"])
    main = sorted(face for _, face in best.values())
    vectors = {r["id"]: np.frombuffer(r["embedding"], np.float32) for r in rows}
    x = np.stack([vectors[f] for f in main]) if main else np.zeros((0, 0), np.float32)
    return [r["id"] for r in rows], main, x


def _record(
    ws: Workspace,
    conn: sqlite3.Connection,
    result: ImportResult,
    digest: str,
    films: dict[str, tuple[int | None, int]],
    kept: dict[str, str],
    decided: tuple[dict[tuple[str, str], str], dict[str, str]],
) -> None:
    """The import, its identities (named after the folders, or as our export's manifest names
    them), the decisions that manifest carries, and link suggestions, at once."""
    verdicts, names_of = decided
    who = f"import:{result.group}"
    dims: set[int] = set()
    new: set[int] = set()
    with transaction(conn):
        names = set(decisions.state(conn).names.values())
        for folder, (film_id, files) in sorted(films.items()):
            entry = IdentityImport(folder, folder, None, film_id, files, 0)
            result.identities.append(entry)
            if film_id is None:
                continue
            every, main, x = _main_faces(conn, film_id)
            result.no_face += files - len(main)
            if not main:
                continue
            identity = catalogue.add_identity(conn, film_id)
            x = cluster.normalise(x)
            labels = np.zeros(len(main), np.int64)
            stats = [
                identify.stats_json(s, np.array(main), [identity])
                for s in cluster.diagnostics(x, labels)
            ]
            params = {"group": result.group, "folder": folder, "archive": str(result.archive)}
            scores = dict(zip(main, identify.outlier_scores(x, labels), strict=True))
            # Other faces in a group's image (people in the background) stay unsorted.
            catalogue.add_run(
                conn,
                film_id,
                METHOD,
                params,
                stats,
                [(f, identity if f in scores else None, scores.get(f)) for f in every],
            )
            entry.name = _free_name(names_of.get(folder, folder), result.group, names)
            names.add(entry.name)
            decisions.record(conn, "name", who, identity=identity, payload={"name": entry.name})
            result.decisions += _carry(conn, who, film_id, folder, set(scores), verdicts)
            entry.identity, entry.faces = int(identity), len(main)
            result.faces += len(main)
            new.add(int(identity))
            dims.add(x.shape[1])
        decided = {f"{folder}/{name}" for folder, name in verdicts}
        found = {f"{e.folder}/{s}" for e in result.identities for s in _sources(conn, e)}
        result.lost = sorted((decided & set(kept)) - found)  # duplicates are elsewhere
        first = next((e.film_id for e in result.identities if e.film_id is not None), None)
        counts = {
            "slug": result.slug,
            "group": result.group,
            "folder": f"{IMPORTS_DIR}/{result.slug}",
            "files": result.files,
            "duplicates": result.duplicates,
            "faces": result.faces,
            "no_face": result.no_face,
            "ignored": result.ignored,
            "identities": len(new),
            "films": [e.film_id for e in result.identities if e.film_id is not None],
            "checksums": kept,
        }
        try:
            result.import_id = catalogue.add_import(conn, result.archive, digest, first, counts)
        except sqlite3.IntegrityError as error:  # the same zip, imported meanwhile elsewhere
            raise ArchiveError(
                f"{result.archive}: imported meanwhile by another run; nothing to do"
            ) from error
        if new:
            cfg = ws.config().cluster
            threshold = identify.params_for(cfg, dims.pop()).merge_threshold * 1.5
            result.links = identify.suggest_links(conn, threshold, only=new)


def _carry(
    conn: sqlite3.Connection,
    who: str,
    film_id: int,
    folder: str,
    main: set[int],
    verdicts: dict[tuple[str, str], str],
) -> int:
    """Record the exporting workspace's keep/discard for each image's main face, as decisions."""
    chosen: dict[str, list[int]] = {}
    for face, source in conn.execute("SELECT id, source FROM faces WHERE film_id = ?", (film_id,)):
        kind = verdicts.get((folder, source)) if face in main else None
        if kind:
            chosen.setdefault(kind, []).append(face)
    for kind, faces in sorted(chosen.items()):
        decisions.record(conn, kind, who, faces, payload={"from": "manifest"})
    return sum(len(f) for f in chosen.values())


def _sources(conn: sqlite3.Connection, entry: IdentityImport) -> set[str]:
    """Images of an imported identity folder in which a face of that identity was found."""
    if entry.identity is None:
        return set()
    rows = conn.execute(
        """SELECT DISTINCT x.source FROM faces x JOIN assignments a ON a.face_id = x.id
           WHERE x.film_id = ? AND a.identity_id = ?""",
        (entry.film_id, entry.identity),
    )
    return {r[0] for r in rows}


def _free_name(folder: str, group: str, taken: set[str]) -> str:
    """The group's folder name; prefixed with the group when another identity has it already, or
    when it is an exported id00042, which would clash with this workspace's own unnamed folders."""
    name = folder.strip() or "identity"
    if name not in taken and not re.fullmatch(r"id\d+", name):
        return name
    base, n = f"{group}_{name}", 2
    candidate = base
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _undo(
    ws: Workspace, conn: sqlite3.Connection, made: list[tuple[int, str]], tmp: Path, final: Path
) -> None:
    """Remove what a failed import made: its films (faces cascade), crops, thumbnails, folder."""
    try:
        with transaction(conn):
            catalogue.remove_films(conn, [film_id for film_id, _ in made])
    except sqlite3.Error:
        pass  # the catalogue is unreachable; the films stay "failed" and re-import redoes them
    for _, slug in made:
        shutil.rmtree(ws.film_dir(slug), ignore_errors=True)
        shutil.rmtree(thumbs_of(ws.root, f"films/{slug}"), ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
