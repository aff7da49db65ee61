"""How well a clustering matches a known truth (synthetic people, bench/cluster.py): pairwise
and BCubed precision, recall and F, unsorted faces counted as singletons."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .cluster import UNSORTED


def pairwise_f(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F over faces; unsorted faces count as singletons."""
    labels = _singletons(labels)

    def pairs(counter: Counter) -> int:
        return sum(c * (c - 1) // 2 for c in counter.values())

    together = pairs(Counter(zip(truth.tolist(), labels.tolist(), strict=True)))
    predicted = pairs(Counter(labels.tolist()))
    actual = pairs(Counter(truth.tolist()))
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f


def bcubed(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """BCubed precision, recall, F (per-face averages); unsorted faces count as singletons."""
    labels = _singletons(labels)
    joint = Counter(zip(truth.tolist(), labels.tolist(), strict=True))
    by_label, by_truth = Counter(labels.tolist()), Counter(truth.tolist())
    n = len(truth)
    precision = sum(c * c / by_label[lab] for (_, lab), c in joint.items()) / n
    recall = sum(c * c / by_truth[t] for (t, _), c in joint.items()) / n
    return precision, recall, 2 * precision * recall / (precision + recall)


def _singletons(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).copy()
    lone = labels == UNSORTED
    labels[lone] = labels.max(initial=0) + 1 + np.arange(int(lone.sum()))
    return labels
