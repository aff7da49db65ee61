"""Clustering runs on the catalogue: per-film identities, stable across runs, linked by film."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from reelface import catalogue
from reelface.catalogue import transaction
from reelface.config import ClusterConfig
from reelface.errors import ReelfaceError
from reelface.identity import cluster, decisions, recognised, tracking
from reelface.pipeline.quality import Thresholds


class ClusterError(ReelfaceError, ValueError):
    """A film that cannot be clustered (unknown, no faces)."""


class NoFaces(ClusterError):
    """The film holds no faces: for a job after extraction, a finished film with no one in it."""


def _unit_rows(blobs: Iterable[bytes]) -> np.ndarray:
    """Stored float32 embeddings as unit rows."""
    return cluster.normalise(np.stack([np.frombuffer(b, np.float32) for b in blobs]))


def _centre(x: np.ndarray) -> np.ndarray:
    """The unit mean direction of unit rows."""
    return cluster.normalise(x.sum(0)[None])[0]


def params_for(cfg: ClusterConfig, dim: int) -> cluster.ClusterParams:
    """Thresholds for the embedder: 128-d is dlib's ResNet, anything else an ArcFace."""
    dlib = dim == 128
    return cluster.ClusterParams(
        threshold=cfg.dlib_threshold if dlib else cfg.arcface_threshold,
        merge_threshold=cfg.dlib_merge if dlib else cfg.arcface_merge,
        neighbours=cfg.neighbours,
        min_size=cfg.min_size,
    )


@dataclass
class RunResult:
    """What one clustering run of one film found."""

    film_id: int
    run_id: int
    method: str
    faces: int
    identities: list[int]  # identity per cluster label
    unsorted: int
    stats: list[dict]
    links: list[tuple[int, int, float]]  # (identity of this film, other identity, distance)


def imported(conn: sqlite3.Connection, film_id: int) -> bool:
    """Whether a film's identities came from a group's folders (`reelface import`)."""
    row = conn.execute(
        "SELECT method FROM cluster_runs WHERE film_id = ? ORDER BY id DESC LIMIT 1", (film_id,)
    ).fetchone()
    return row is not None and row[0] == "import"


def cluster_film(
    conn: sqlite3.Connection,
    film_id: int,
    cfg: ClusterConfig,
    k: int | None = None,
    force: bool = False,
    rules: Thresholds | None = None,
) -> RunResult:
    """Cluster one film's faces, record the run and suggest links to other films' identities.

    Each face's "not recognised by its identity" verdict is rewritten under `rules` (default:
    the defaults), so re-clustering refreshes it (identity/recognised.py)."""
    film = catalogue.film_or_fail(conn, str(film_id))
    if imported(conn, film_id) and not force:
        raise ClusterError(
            f"{film['slug']} holds a group's hand-sorted identities (imported); they are kept "
            "as they are (cluster it with --force to regroup it anyway)"
        )
    rows = conn.execute(
        "SELECT id, frame, box, embedding FROM faces WHERE film_id = ? ORDER BY id", (film_id,)
    ).fetchall()
    if not rows:
        raise NoFaces(f"film {film['slug']} has no faces (run `reelface extract` first)")
    ids = np.array([r["id"] for r in rows], np.int64)
    x = _unit_rows(r["embedding"] for r in rows)
    params = params_for(cfg, x.shape[1])
    frames = np.array([r["frame"] for r in rows])
    if k is not None:
        labels, method = cluster.kmeans(x, k), f"kmeans-{k}"
    else:
        tracks = None
        if film["kind"] == "video":
            step = int(json.loads(film["params"]).get("interval", 1))
            boxes = np.array([json.loads(r["box"]) for r in rows], np.float64)
            tracks = tracking.tracks(frames, boxes, x, step, cfg.track_iou, params.threshold)
        labels = cluster.cluster(x, params, frames=frames.tolist(), tracks=tracks)
        method = "auto"
    stats = cluster.diagnostics(x, labels)
    scores = outlier_scores(x, labels)
    with transaction(conn):
        identities = _stable_identities(conn, film_id, method, ids, labels)
        run = catalogue.add_run(
            conn,
            film_id,
            method,
            asdict(params),
            [stats_json(s, ids, identities) for s in stats],
            [
                (int(f), identities[lab] if lab >= 0 else None, s)
                for f, lab, s in zip(ids.tolist(), labels.tolist(), scores, strict=True)
            ],
        )
        links = suggest_links(conn, params.merge_threshold * 1.5, only=set(identities))
        recognised.refresh(conn, ids, x, labels, rules or Thresholds(), params.threshold)
    return RunResult(
        film_id,
        int(run),
        method,
        len(ids),
        identities,
        int((labels == cluster.UNSORTED).sum()),
        [stats_json(s, ids, identities) for s in stats],
        links,
    )


def outlier_scores(x: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """Per face: how many spreads below its cluster's mean similarity (None when unsorted)."""
    out: list[float | None] = [None] * len(x)
    found, cents = cluster.centroids(x, labels)
    for index, label in enumerate(found):
        members = np.nonzero(labels == label)[0]
        sims = x[members] @ cents[index]
        z = (sims.mean() - sims) / max(float(sims.std()), 1e-6)
        for m, s in zip(members.tolist(), z.tolist(), strict=True):
            out[m] = round(float(s), 3)
    return out


def stats_json(s: cluster.ClusterStats, ids: np.ndarray, identities: list[int]) -> dict:
    return {
        "identity": identities[s.label],
        "size": s.size,
        "mean_similarity": round(s.mean_similarity, 4),
        "spread": round(s.spread, 4),
        "nearest": identities[s.nearest] if s.nearest is not None else None,
        "nearest_distance": round(s.nearest_distance, 4) if s.nearest_distance else None,
        "outliers": [int(ids[i]) for i in s.outliers],
        "outlier_scores": s.outlier_scores,
    }


def _stable_identities(
    conn: sqlite3.Connection, film_id: int, method: str, ids: np.ndarray, labels: np.ndarray
) -> list[int]:
    """Identity per cluster: the one most of its faces had in the previous run, else a new one.

    Keeping ids stable is what lets merges and names survive re-clustering; the previous run of
    the same method counts first, so a k-means comparison in between does not renumber.
    """
    previous = dict(
        conn.execute(
            """SELECT face_id, identity_id FROM assignments WHERE run_id = COALESCE(
               (SELECT MAX(id) FROM cluster_runs WHERE film_id = ? AND method = ?),
               (SELECT MAX(id) FROM cluster_runs WHERE film_id = ?))""",
            (film_id, method, film_id),
        ).fetchall()
    )
    count = int(labels.max(initial=-1)) + 1
    votes = []
    for label in range(count):
        members = ids[labels == label].tolist()
        for identity, n in Counter(previous.get(f) for f in members).items():
            if identity is not None:
                votes.append((-n, label, identity))
    chosen: dict[int, int] = {}
    used: set[int] = set()
    for _, label, identity in sorted(votes):
        if label not in chosen and identity not in used:
            chosen[label] = identity
            used.add(identity)
    out = []
    for label in range(count):
        if label not in chosen:
            chosen[label] = catalogue.add_identity(conn, film_id)
        out.append(chosen[label])
    return out


# ---------------------------------------------------------------------------------------------
# Identities as the person sees them


@dataclass
class IdentityInfo:
    """One effective identity: counts, films, diagnostics, link suggestions."""

    id: int
    name: str | None
    films: list[str]
    faces: int
    kept: int
    discarded: int
    passed: int
    mean_similarity: float | None
    spread: float | None
    suggestions: list[tuple[int, float]]  # (other identity, centroid distance)


def centroids_by_identity(
    conn: sqlite3.Connection, st: decisions.State | None = None
) -> dict[int, tuple[int, np.ndarray, np.ndarray]]:
    """identity → (embedder id, member face ids, unit centroid), discarded faces left out."""
    st = st or decisions.state(conn)
    views = decisions.view(conn, st)
    members: dict[int, list[int]] = {}
    for v in views.values():
        if v.identity is not None and v.verdict != "discard":
            members.setdefault(v.identity, []).append(v.face_id)
    out = {}
    for identity, faces in members.items():
        marks = ",".join("?" * len(faces))
        rows = conn.execute(
            f"SELECT embedding, embedder_id FROM faces WHERE id IN ({marks})", faces
        ).fetchall()
        x = _unit_rows(r[0] for r in rows)
        out[identity] = (rows[0][1], np.array(faces), _centre(x))
    return out


def suggest_links(
    conn: sqlite3.Connection, threshold: float, only: set[int] | None = None
) -> list[tuple[int, int, float]]:
    """Record (and return) pairs of identities of different films whose centroids are close."""
    st = decisions.state(conn)
    cents = centroids_by_identity(conn, st)
    film_of = dict(conn.execute("SELECT id, film_id FROM identities").fetchall())
    keys = sorted(cents)
    found = []
    for a in keys:
        if only is not None and a not in only:
            continue
        for b in keys:
            ea, _, ca = cents[a]
            eb, _, cb = cents[b]
            if a == b or ea != eb or film_of.get(a) == film_of.get(b):
                continue
            if (a, b) in st.rejected or (b, a) in st.rejected:
                continue
            distance = float(1 - ca @ cb)
            if distance < threshold:
                found.append((a, b, round(distance, 4)))
    catalogue.set_links(conn, found)
    return found


def identities(conn: sqlite3.Connection) -> list[IdentityInfo]:
    """Every effective identity (merged ones folded in), largest first."""
    st = decisions.state(conn)
    views = decisions.view(conn, st)
    faces = {
        r["id"]: r
        for r in conn.execute(
            "SELECT x.id, x.passed, x.embedding, f.slug FROM faces x JOIN films f "
            "ON f.id = x.film_id"
        )
    }
    groups: dict[int, list[decisions.FaceView]] = {}
    for v in views.values():
        if v.identity is not None:
            groups.setdefault(v.identity, []).append(v)
    links: dict[int, list[tuple[int, float]]] = {}
    for a, b, d in conn.execute("SELECT identity_id, other_id, distance FROM links"):
        ra, rb = st.resolve(a), st.resolve(b)
        if ra != rb and (a, b) not in st.rejected and (b, a) not in st.rejected:
            links.setdefault(ra, []).append((rb, d))
            links.setdefault(rb, []).append((ra, d))
    out = []
    for identity, members in groups.items():
        kept = [m for m in members if m.verdict != "discard"]
        sims_mean = sims_spread = None
        if kept:
            x = _unit_rows(faces[m.face_id]["embedding"] for m in kept)
            sims = x @ _centre(x)
            sims_mean, sims_spread = round(float(sims.mean()), 4), round(float(sims.std()), 4)
        best: dict[int, float] = {}
        for other, d in links.get(identity, []):
            best[other] = min(d, best.get(other, 9.0))
        out.append(
            IdentityInfo(
                id=identity,
                name=st.names.get(identity),
                films=sorted({faces[m.face_id]["slug"] for m in members}),
                faces=len(members),
                kept=sum(m.verdict == "keep" for m in members),
                discarded=sum(m.verdict == "discard" for m in members),
                passed=sum(bool(faces[m.face_id]["passed"]) for m in members),
                mean_similarity=sims_mean,
                spread=sims_spread,
                suggestions=sorted(best.items(), key=lambda t: t[1]),
            )
        )
    return sorted(out, key=lambda i: (-i.faces, i.id))
