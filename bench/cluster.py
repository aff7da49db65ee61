"""Clustering benchmark: speed and peak memory on synthetic embeddings, accuracy on real faces.

Speed: N unit embeddings of known identities (100 faces each, dlib-like geometry: people
0.15–0.35 apart in cosine distance, faces of one person ~0.03 from its centre, 10 % noisy faces)
clustered by the automatic method; time and peak memory (tracemalloc: numpy arrays included).
Accuracy: every face of the photos shipped in installed packages (insightface's t1 and Tom
Hanks, scikit-image's astronaut, SCRFD's samples: the 1927 Solvay conference, Gauss, Newton),
each augmented into many views (shift/scale/rotation crops, blur, light, JPEG), embedded by the
embedded dlib ResNet; pairwise F and BCubed of the automatic method and of k-means with K = the
true number and K = 2× (the old tool), side by side.

Run: REELFACE_MODELS=/tmp/rfmodels python bench/cluster.py [--sizes 10000,100000,300000]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from reelface import config, synth
from reelface.identity import cluster, scores
from reelface.models import install, registry
from reelface.pipeline import align

VIEWS = 16  # augmented views per real face


def synthetic(n: int, dim: int = 128, per_person: int = 100, seed: int = 0):
    """(embeddings, identity labels) with the geometry of dlib descriptors."""
    rng = np.random.default_rng(seed)
    people = max(1, n // per_person)
    mean = cluster.normalise(rng.normal(size=(1, dim)))
    # Centres spread around a common direction, as real descriptors are (not orthogonal).
    centres = cluster.normalise(mean + 0.45 * cluster.normalise(rng.normal(size=(people, dim))))
    truth = rng.integers(0, people, n)
    noise = rng.normal(size=(n, dim)).astype(np.float32)
    scale = np.where(rng.random(n) < 0.1, 0.032, 0.018)[:, None]  # 10 % blurred/turned faces
    x = cluster.normalise(centres[truth] + scale * noise)
    return x.astype(np.float32), truth


def bench_speed(sizes: list[int], params: cluster.ClusterParams) -> None:
    print(
        f"{'faces':>8} {'people':>7} {'seconds':>8} {'peak MiB':>9} "
        f"{'pairwise F':>11} {'BCubed F':>9}"
    )
    for n in sizes:
        x, truth = synthetic(n)
        tracemalloc.start()
        start = time.perf_counter()
        labels = cluster.cluster(x, params)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        f = scores.pairwise_f(truth, labels)[2]
        b = scores.bcubed(truth, labels)[2]
        people = len(np.unique(truth))
        print(f"{n:>8} {people:>7} {seconds:>8.2f} {peak / 2**20:>9.0f} {f:>11.3f} {b:>9.3f}")


def _photos() -> list[Path]:
    found = list(synth.package_photos().values())
    samples = config.models_dir(config.Config()) / "samples"
    found += sorted(samples.glob("*.png")) + sorted(samples.glob("*.jpg"))
    return found


def _augment(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One view: a random similarity (shift, scale, roll), light, blur, JPEG; and its matrix."""
    h, w = rgb.shape[:2]
    angle = rng.uniform(-12, 12)
    scale = rng.uniform(0.6, 1.2)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    view = cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_AREA, borderValue=(128,) * 3)
    gain, gamma = rng.uniform(0.55, 1.4), rng.uniform(0.7, 1.4)
    view = np.clip(255 * (view / 255.0) ** gamma * gain, 0, 255).astype(np.uint8)
    sigma = rng.choice([0, 0, 0.8, 1.5, 2.5])
    if sigma:
        view = cv2.GaussianBlur(view, (0, 0), sigma)
    ok, jpg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
    return cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED), matrix


def real_faces(views: int = VIEWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, person label, view index) of augmented views of every package face."""
    detector, embedder = registry.load(config.Config())
    rng = np.random.default_rng(seed)
    embs, labels, view_ids = [], [], []
    person = 0
    for path in _photos():
        rgb = synth.load_photo(path)
        found = detector.detect([rgb], max(320, min(1280, max(rgb.shape[:2]))), 0.5)[0]
        for det in found:
            lm = np.asarray(det.landmarks, np.float64)
            iod = np.linalg.norm(lm[1] - lm[0])
            if iod < 20:  # too small to say anything about identity
                continue
            chips = []
            for v in range(views):
                view, matrix = (rgb, np.eye(3)[:2]) if v == 0 else _augment(rgb, rng)
                # Landmarks follow the view, with the detector's typical error added.
                marks = align.apply(matrix, lm) + rng.normal(0, 0.03 * iod, lm.shape) * (v > 0)
                m = align.align_matrix(marks, embedder.template, embedder.template.size)
                chips.append(align.warp(np.ascontiguousarray(view), m, embedder.template.size))
            embs.append(embedder.embed(np.stack(chips)))
            labels += [person] * views
            view_ids += list(range(views))
            person += 1
    return np.concatenate(embs), np.array(labels), np.array(view_ids)


def bench_accuracy(params: cluster.ClusterParams) -> None:
    x, truth, _ = real_faces()
    people = len(np.unique(truth))
    print(f"\nreal faces: {len(x)} views of {people} people from package photos")
    rows = [("auto (no K)", cluster.cluster(x, params))]
    rows.append((f"k-means K={people}", cluster.kmeans(x, people)))
    rows.append((f"k-means K={2 * people} (old)", cluster.kmeans(x, 2 * people)))
    print(
        f"{'method':<24} {'clusters':>8} {'unsorted':>8} {'pair P':>7} {'pair R':>7} "
        f"{'pair F':>7} {'B3 P':>6} {'B3 R':>6} {'B3 F':>6}"
    )
    for name, labels in rows:
        p, r, f = scores.pairwise_f(truth, labels)
        bp, br, bf = scores.bcubed(truth, labels)
        found = len(np.unique(labels[labels >= 0]))
        unsorted = int((labels < 0).sum())
        print(
            f"{name:<24} {found:>8} {unsorted:>8} {p:>7.3f} {r:>7.3f} {f:>7.3f} "
            f"{bp:>6.3f} {br:>6.3f} {bf:>6.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    from reelface.identity.identify import params_for

    params = params_for(config.Config().cluster, dim=128)
    print(f"params: {params}")
    bench_speed([int(s) for s in args.sizes.split(",") if s], params)
    if not args.skip_accuracy:
        if not install.detector_path(config.models_dir(config.Config())).is_file():
            print("embedded models missing: run `reelface models install`", file=sys.stderr)
            return 2
        bench_accuracy(params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
