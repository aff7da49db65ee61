"""Identity clustering of unit embeddings: no K, video constraints, diagnostics; k-means to compare.

Pure functions on arrays; the catalogue side lives in identify.py, must-link tracks in
tracking.py, scores against a known truth in scores.py. The default method is a
constrained single linkage on a k-nearest-neighbour graph cut at a distance threshold:
- edges are each face's k nearest neighbours closer than the threshold (exact blockwise products
  up to EXACT_LIMIT faces, an inverted-file search over k-means cells above, so memory stays
  O(N·k) and 100k faces take seconds on two cores instead of an N² matrix);
- edges are merged shortest first (Kruskal with union-find), refusing a merge when the two groups
  share a frame (cannot-link) or when their centroids are further apart than `merge_threshold`:
  that stops one blurred face from chaining two people, the known weakness of single linkage;
- must-link groups (tracks) enter as single nodes, so they can never be split;
- groups smaller than `min_size` faces stay unsorted (label -1) instead of being forced somewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNSORTED = -1
# Up to this many nodes the neighbour search is exact (a 2048-row block of products at a time).
EXACT_LIMIT = 20_000
_BLOCK = 2048


@dataclass(frozen=True)
class ClusterParams:
    """Knobs of the automatic method; distances are cosine distances (1 − cosine similarity)."""

    threshold: float  # an edge joins two faces closer than this
    merge_threshold: float  # two groups merge only if their centroids are closer than this
    neighbours: int = 10  # edges kept per face (the k of the kNN graph)
    min_size: int = 2  # smaller groups stay unsorted
    probe: int = 8  # inverted-file cells searched per face above EXACT_LIMIT
    attach: bool = True  # give lone faces the nearest cluster within `threshold` afterwards
    seed: int = 0


@dataclass
class ClusterStats:
    """Diagnostics of one cluster: the numbers the review screen sorts and filters by."""

    label: int
    size: int
    mean_similarity: float  # mean cosine similarity of members to the centroid
    spread: float  # standard deviation of that similarity
    nearest: int | None  # label of the nearest other cluster (by centroid)
    nearest_distance: float | None  # its centroid cosine distance
    outliers: list[int] = field(default_factory=list)  # member indices, least similar first
    outlier_scores: list[float] = field(default_factory=list)  # their z-scores (σ below mean)


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------------------------------
# Neighbour graph


def _top_k(sims: np.ndarray, k: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's k largest entries at least `floor`."""
    rows, cols = np.nonzero(sims >= floor)
    if len(rows) == 0:
        return rows, cols
    counts = np.bincount(rows, minlength=len(sims))
    if counts.max() <= k:
        return rows, cols
    # Only rows with more than k candidates need ranking; sort those entries by (row, -sim).
    values = sims[rows, cols]
    order = np.lexsort((-values, rows))
    rows, cols = rows[order], cols[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    return rows[keep], cols[keep]


def _spherical_kmeans(x: np.ndarray, cells: int, rng: np.random.Generator, iters: int = 8):
    """Unit centroids of `cells` cells on a sample: the inverted file's coarse quantiser."""
    centres = x[rng.choice(len(x), cells, replace=False)].copy()
    for _ in range(iters):
        assign = np.argmax(x @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, x)
        empty = np.linalg.norm(sums, axis=1) < 1e-9
        sums[empty] = x[rng.choice(len(x), int(empty.sum()))]
        centres = normalise(sums)
    return centres


def _assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), 8192):
        out[start : start + 8192] = np.argmax(x[start : start + 8192] @ centres.T, axis=1)
    return out


def neighbour_edges(
    x: np.ndarray, k: int, threshold: float, probe: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges (i < j, distance) between each row and its k nearest within threshold."""
    n = len(x)
    floor = 1.0 - threshold
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    if n <= EXACT_LIMIT:
        for start in range(0, n, _BLOCK):
            sims = x[start : start + _BLOCK] @ x.T
            idx = np.arange(len(sims))
            sims[idx, start + idx] = -2.0  # no self edges
            r, c = _top_k(sims, k, floor)
            found_i.append(r + start)
            found_j.append(c)
    else:
        rng = np.random.default_rng(seed)
        cells = int(np.clip(np.sqrt(n), 16, 4096))
        sample = x[rng.choice(n, min(n, cells * 40), replace=False)]
        centres = _spherical_kmeans(sample, cells, rng)
        assign = _assign(x, centres)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(cells + 1))
        members = [order[bounds[c] : bounds[c + 1]] for c in range(cells)]
        near = np.argsort(-(centres @ centres.T), axis=1)[:, :probe]
        for c in range(cells):
            query = members[c]
            if len(query) == 0:
                continue
            cand = np.concatenate([members[o] for o in near[c]])
            sims = x[query] @ x[cand].T
            sims[query[:, None] == cand[None, :]] = -2.0
            r, col = _top_k(sims, k, floor)
            found_i.append(query[r])
            found_j.append(cand[col])
    i = np.concatenate(found_i) if found_i else np.zeros(0, np.int64)
    j = np.concatenate(found_j) if found_j else np.zeros(0, np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    pairs = np.unique(lo.astype(np.int64) * n + hi)
    lo, hi = pairs // n, pairs % n
    dist = 1.0 - np.einsum("ij,ij->i", x[lo], x[hi])
    return lo, hi, dist.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Constrained linkage


def _linkage(
    x: np.ndarray,
    weights: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    cannot: list[frozenset] | None,
    merge_threshold: float,
) -> np.ndarray:
    """Kruskal over edges shortest first, with cannot-link and centroid checks; root per node."""
    n = len(x)
    parent = list(range(n))
    sums = x.astype(np.float64) * weights[:, None]
    floor = 1.0 - merge_threshold
    groups = [set(c) for c in cannot] if cannot is not None else None

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    lo, hi, dist = edges
    for e in np.argsort(dist, kind="stable").tolist():
        a, b = find(int(lo[e])), find(int(hi[e]))
        if a == b:
            continue
        # Average linkage from the sums: mean similarity over all pairs across the two groups.
        if float(sums[a] @ sums[b]) / (weights[a] * weights[b]) < floor:
            continue
        if groups is not None:
            if not groups[a].isdisjoint(groups[b]):
                continue
            if len(groups[a]) < len(groups[b]):
                a, b = b, a
            groups[a] |= groups[b]
            groups[b] = set()
        elif weights[a] < weights[b]:
            a, b = b, a
        parent[b] = a
        sums[a] += sums[b]
        weights[a] += weights[b]
    return np.array([find(v) for v in range(n)], np.int64)


def cluster(
    x: np.ndarray,
    params: ClusterParams,
    frames: list | None = None,
    tracks: np.ndarray | None = None,
) -> np.ndarray:
    """Labels 0..C-1 by decreasing size, UNSORTED for faces in groups under min_size.

    `frames[i]` is a hashable frame key (faces sharing one are different people);
    `tracks[i]` a must-link group id (faces sharing one are the same person), −1 for none.
    """
    x = normalise(x)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    # Must-link: collapse every track to one node at its members' mean.
    if tracks is None:
        node = np.arange(n)
    else:
        tracks = np.asarray(tracks)
        keyed = np.where(tracks >= 0, tracks, tracks.max(initial=0) + 1 + np.arange(n))
        _, node = np.unique(keyed, return_inverse=True)
    count = int(node.max()) + 1
    sums = np.zeros((count, x.shape[1]), np.float64)
    np.add.at(sums, node, x)
    weights = np.bincount(node, minlength=count).astype(np.float64)
    nodes = normalise(sums)
    cannot = None
    if frames is not None:
        keys: list[set] = [set() for _ in range(count)]
        for i, key in enumerate(frames):
            keys[node[i]].add(key)
        cannot = [frozenset(k) for k in keys]
    edges = neighbour_edges(nodes, params.neighbours, params.threshold, params.probe, params.seed)
    roots = _linkage(nodes, weights.copy(), edges, cannot, params.merge_threshold)
    labels = _relabel(roots[node], params.min_size)
    if params.attach:
        labels = _attach(x, nodes, node, labels, cannot, params.threshold)
    return labels


def _attach(
    x: np.ndarray,
    nodes: np.ndarray,
    node: np.ndarray,
    labels: np.ndarray,
    cannot: list[frozenset] | None,
    threshold: float,
) -> np.ndarray:
    """Give each unsorted node the nearest cluster whose centroid is within `threshold`.

    Average linkage rightly refuses to let a blurred face pull clusters together, but that face
    alone is usually still closest to its own person: attaching it to a centroid cannot chain.
    """
    found, cents = centroids(x, labels)
    lone = np.unique(node[labels == UNSORTED])
    if len(found) == 0 or len(lone) == 0:
        return labels
    taken: dict[int, set] = {}
    if cannot is not None:
        for n_, lab in zip(node.tolist(), labels.tolist(), strict=True):
            if lab != UNSORTED:
                taken.setdefault(lab, set()).update(cannot[n_])
    node_label = np.full(len(nodes), UNSORTED, np.int64)
    node_label[node] = labels  # every face of a node shares its label
    for start in range(0, len(lone), 4096):
        block = lone[start : start + 4096]
        sims = nodes[block] @ cents.T
        for row, n_ in enumerate(block.tolist()):
            for c in np.argsort(-sims[row])[:3].tolist():
                if 1 - sims[row, c] >= threshold:
                    break
                lab = int(found[c])
                if cannot is not None and not taken[lab].isdisjoint(cannot[n_]):
                    continue
                node_label[n_] = lab
                if cannot is not None:
                    taken[lab] |= cannot[n_]
                break
    return node_label[node]


def _relabel(roots: np.ndarray, min_size: int) -> np.ndarray:
    """Dense labels by decreasing size (ties: first member), UNSORTED under min_size."""
    uniq, first, inverse, counts = np.unique(
        roots, return_index=True, return_inverse=True, return_counts=True
    )
    order = sorted(range(len(uniq)), key=lambda u: (-counts[u], first[u]))
    mapping = np.full(len(uniq), UNSORTED, np.int64)
    label = 0
    for u in order:
        if counts[u] >= min_size:
            mapping[u] = label
            label += 1
    return mapping[inverse]


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The old tool's method for comparison: k-means with K given, every face forced somewhere."""
    from sklearn.cluster import KMeans

    x = normalise(x)
    k = max(1, min(k, len(x)))
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    return _relabel(labels, 1)


# ---------------------------------------------------------------------------------------------
# Diagnostics


def centroids(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted cluster labels, their unit centroids); unsorted faces left out."""
    x = normalise(x)
    found = np.unique(labels[labels != UNSORTED])
    if len(found) == 0:
        return found, np.zeros((0, x.shape[1]), np.float32)
    return found, normalise(np.stack([x[labels == c].sum(0) for c in found]))


def diagnostics(x: np.ndarray, labels: np.ndarray, z: float = 2.0) -> list[ClusterStats]:
    """Per cluster: size, similarity to centroid (mean, spread), nearest cluster, outliers.

    A member is an outlier when its similarity is more than `z` spreads below the mean; all
    members are still ranked least similar first, so the review can show outliers first.
    """
    x = normalise(x)
    found, cents = centroids(x, labels)
    between = cents @ cents.T if len(found) else np.zeros((0, 0))
    np.fill_diagonal(between, -np.inf)
    out = []
    for index, label in enumerate(found):
        members = np.nonzero(labels == label)[0]
        sims = x[members] @ cents[index]
        mean, spread = float(sims.mean()), float(sims.std())
        rank = np.argsort(sims, kind="stable")
        scores = (mean - sims[rank]) / max(spread, 1e-6)
        flagged = scores > z
        nearest = int(np.argmax(between[index])) if len(found) > 1 else None
        out.append(
            ClusterStats(
                label=int(label),
                size=len(members),
                mean_similarity=mean,
                spread=spread,
                nearest=int(found[nearest]) if nearest is not None else None,
                nearest_distance=(
                    float(1 - between[index, nearest]) if nearest is not None else None
                ),
                outliers=members[rank[flagged]].tolist(),
                outlier_scores=[round(float(s), 3) for s in scores[flagged]],
            )
        )
    return out
