"""Faces their own identity does not recognise: the clustering half of the "occluded" reason.

A face whose features are hidden embeds away from its person. After each clustering run, a
sorted face gets "occluded: not recognised by its identity" when it is both far from its
identity's centroid (`rules.unrecognised` × the embedder's same-person distance) and an outlier
of that identity (OUTLIER spreads below its mean similarity); re-clustering replaces the reason.
Measured on bench/quality.py's faces clustered by the real method (dlib's ResNet, seeds 0 / 1):
good faces sit ≤ 0.033 from their centroid, faces with covered features 0.011–0.063, so the
distance alone would cost good faces long before it caught the covered ones; visibility.py does
that job at extraction, and this rule stays conservative (0.06 for dlib: about twice the good
faces' largest distance), for what the pixels cannot show. Unsorted faces are not judged: a
face no one resembles is as often an extra seen once.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from reelface.catalogue import quality as store
from reelface.identity import cluster
from reelface.pipeline import quality

MARK = "occluded: not recognised by its identity"
OUTLIER = 2.0  # spreads below the identity's mean similarity to its centroid


def unrecognised(x: np.ndarray, labels: np.ndarray, limit: float) -> dict[int, float]:
    """Index → distance to its centroid, for sorted faces beyond `limit` that are outliers."""
    x = cluster.normalise(x)
    found, cents = cluster.centroids(x, labels)
    out: dict[int, float] = {}
    for index, label in enumerate(found):
        members = np.nonzero(labels == label)[0]
        sims = x[members] @ cents[index]
        z = (sims.mean() - sims) / max(float(sims.std()), 1e-6)
        for m, s, score in zip(members.tolist(), sims.tolist(), z.tolist(), strict=True):
            if 1.0 - s > limit and score >= OUTLIER:
                out[m] = 1.0 - s
    return out


def with_verdict(reasons: list[str], distance: float | None, limit: float) -> list[str]:
    """`reasons` without the last run's verdict, plus this run's when the face is flagged."""
    kept = without_verdict(reasons)
    if distance is not None:
        kept.append(f"{MARK} (distance {distance:.3f} to its centroid > {limit:.3f})")
    return kept


def without_verdict(reasons: list[str]) -> list[str]:
    """`reasons` without the clustering's verdict (for a face a person put in its identity)."""
    return [r for r in reasons if not r.startswith(MARK)]


def refresh(
    conn: sqlite3.Connection,
    ids: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    rules: quality.Thresholds,
    same_person: float,
) -> int:
    """Rewrite every face's clustering verdict, in the caller's transaction (the run's, so a
    run and its verdicts land together); how many faces it flags."""
    limit = rules.unrecognised * same_person
    flagged = unrecognised(x, labels, limit) if rules.unrecognised > 0 else {}
    current = store.reasons_of(conn, [int(i) for i in ids])
    changes = []
    for index, face in enumerate(ids.tolist()):
        before = current.get(int(face), [])
        after = with_verdict(before, flagged.get(index), limit)
        if after != before:
            changes.append((int(face), after, quality.passes(after)))
    store.update_reasons(conn, changes)
    return len(flagged)
