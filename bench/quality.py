"""The cleaning rules against a labelled set of real faces: old rules and new, side by side.

The set: every face of the package and sample photos (insightface's t1 and astronaut, Gauss,
Newton, the 1927 Solvay conference) rendered into frames and damaged the ways films damage
faces: optical defocus (disc PSF), motion (line PSF), film grain, JPEG compression, hands,
towels and dark bars over features, the frame edge, a wrong landmark estimate (points moved,
scale wrong, left and right swapped), and static shots sampled again and again (duplicates).
Each frame goes through the real detector (coarse pass and refinement, as extraction runs it),
the crop is cut at its delivered size, and both rule sets judge it.

    python bench/quality.py [--seed 0] [--sheet bench/out/quality-sheet.png] [--float32]

The set is built by bench/quality_set.py (imported from beside this script).

Labels: good (no rule should fire), blurry, incomplete, misaligned, duplicate. A class counts as
flagged "for the right reason" when its reason key is among those listed in RIGHT.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from quality_set import Sample, duplicate_shots, make_set, misplacing, sources  # beside it
from rich.console import Console
from rich.table import Table

from reelface import config
from reelface.models import registry
from reelface.pipeline import align, detect, duplicates, quality

OUT = Path(__file__).parent / "out"
RIGHT = {
    "good": set(),
    "blurry": {"blurry"},
    "incomplete": {"incomplete", "occluded"},
    "misaligned": {"misaligned", "landmarks", "small", "tilted"},
    "duplicate": {"duplicate"},
}


# -- judging -------------------------------------------------------------------------------------


def old_reasons(m: quality.Measures, t: quality.Thresholds) -> list[str]:
    """The rules as they were: Laplacian blur on the 256 px crop, fixed residual, no landmarks."""
    out = []
    if m.laplacian < 25.0:
        out.append("blurry")
    if abs(m.roll) > t.roll:
        out.append("tilted")
    if m.face_area < t.face_area:
        out.append("small")
    if m.landmarks_outside or m.outside > t.outside or m.padding > t.padding or m.score < t.score:
        out.append("incomplete")
    if m.residual > t.residual:
        out.append("misaligned")
    return out


def _nearest(found, truth: np.ndarray):
    """The detection whose eyes sit nearest the true eyes, if within half an eye distance."""
    iod = float(np.linalg.norm(truth[1] - truth[0]))
    target = truth[:2].mean(0)
    best = min(
        found, key=lambda d: float(np.linalg.norm(d.landmarks[:2].mean(0) - target)), default=None
    )
    if best is None or np.linalg.norm(best.landmarks[:2].mean(0) - target) > 0.5 * iod:
        return None
    return best


def judge(samples: list[Sample], detector, rules: quality.Thresholds, seed: int) -> None:
    """Detect each sample's face as extraction does, cut its crop, and apply both rule sets."""
    rng = np.random.default_rng(seed + 2)
    for s in samples:
        side = max(128, min(1280, int(np.ceil(max(s.frame.shape[:2]) / 32) * 32)))
        coarse = detector.detect([s.frame], min(side, 640), 0.5)[0]
        det = _nearest(coarse, s.truth)
        if det is None:
            continue
        [det] = detect.refine(detector, [s.frame], [det], 256, 0.5)
        s.found = True
        points = det.landmarks.astype(np.float64)
        if s.perturb:
            points = misplacing(points, s.truth, s.perturb, s.size, rng)
        matrix = align.align_matrix(points, align.FFHQ, s.size)
        upscale = align.scale_of(matrix)
        crop = align.warp(s.frame, matrix, s.size, fine=upscale > 1)
        to_analysis = align.align_matrix(points, quality.ANALYSIS, 256)
        if s.size < 256:
            analysis = align.warp_smooth(s.frame, to_analysis, 256)
        else:
            analysis = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)
        m = quality.measure(
            det.box, det.score, points, matrix, s.size, s.frame.shape[:2],
            cv2.cvtColor(analysis, cv2.COLOR_RGB2GRAY), crop=crop,
        )  # fmt: skip
        s.crop, s.analysis, s.measures, s.points = crop, analysis, m, points
        if upscale > rules.max_upscale:  # extraction keeps no crop of these at all
            s.old = s.new = ["small"]
            continue
        s.old = old_reasons(m, rules)
        s.new = quality.reason_keys(quality.reasons(m, rules))


def judge_duplicates(samples: list[Sample], embedder, rules: quality.Thresholds, cluster) -> None:
    """The duplicate pass over every shot's faces (one track a shot), as at a film's end."""
    from reelface.identity import identify

    found = [s for s in samples if s.found and s.crop is not None]
    if not found:
        return
    template = embedder.template
    chips = []
    for s in found:
        to_analysis = align.align_matrix(s.points, quality.ANALYSIS, 256)
        chip_m = align.align_matrix(s.points, template, template.size)
        chip_m = align.compose(chip_m, align.invert(to_analysis))
        chips.append(align.warp_smooth(s.analysis, chip_m, template.size))
    x = embedder.embed(np.stack(chips)).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    same_person = identify.params_for(cluster, x.shape[1]).threshold
    faces = [
        duplicates.Candidate(
            id=i,
            track=s.shot,
            signature=duplicates.signature(s.analysis),
            embedding=x[i],
            rank=duplicates.rank(s.measures.as_dict()),
            passed=quality.passes(quality.reasons(s.measures, rules)),
        )
        for i, s in enumerate(found)
    ]
    for i in duplicates.groups(faces, rules.duplicate, same_person):
        found[i].new.append("duplicate")


def _share(n: int, total: int) -> str:
    return f"{n}/{total} ({n / max(total, 1):.0%})"


def _flagged(keys: list[str]) -> bool:
    return any(key in quality.DISCARD_REASONS for key in keys)


def report(samples: list[Sample], console: Console) -> None:
    """Per class: how many the old and the new rules flag for the right reason, and at all."""
    table = Table(title="cleaning rules on the labelled set: old against new")
    for column in ("class", "faces", "found", "old: right reason", "new: right reason",
                   "old: any flag", "new: any flag"):  # fmt: skip
        table.add_column(column, justify="right")
    for label, right in RIGHT.items():
        group = [s for s in samples if s.label == label]
        found = [s for s in group if s.found]
        total = len(found)
        if label == "duplicate":  # one face of each shot stays: the others are the class
            total = len(found) - len({s.shot for s in found})
        old = sum(1 for s in found if right & set(s.old))
        new = sum(1 for s in found if right & set(s.new))
        table.add_row(
            label,
            str(len(group)),
            str(len(found)),
            "—" if label == "good" else _share(old, total),
            "—" if label == "good" else _share(new, total),
            _share(sum(_flagged(s.old) for s in found), len(found)),
            _share(sum(_flagged(s.new) for s in found), len(found)),
        )
    console.print(table)
    misses = [s for s in samples if s.found and s.label not in ("good", "duplicate")
              and not RIGHT[s.label] & set(s.new)]  # fmt: skip
    good_flags: dict[str, int] = {}
    for s in samples:
        if s.found and s.label == "good":
            for key in s.new:
                good_flags[key] = good_flags.get(key, 0) + 1
    kept = [s for s in samples if s.found and s.label == "duplicate" and "duplicate" not in s.new]
    console.print(f"missed by the new rules, by damage: {_count(misses) if misses else 'none'}")
    console.print(f"reasons the new rules gave good faces: {good_flags or 'none'}")
    soft = [f"{s.source} {s.kind} {s.measures.sharpness:.1f}" for s in samples
            if s.found and s.label == "good" and "blurry" in s.new]  # fmt: skip
    if soft:
        console.print(f"good faces flagged blurry (sharpness): {', '.join(soft)}")
    console.print(
        f"duplicate shots: {len(kept)} faces kept of {len({s.shot for s in kept})} shots, "
        f"{sum(_flagged([k for k in s.new if k != 'duplicate']) for s in kept)} of them flagged"
    )


def lab_mapping(samples: list[Sample], rules: quality.Thresholds, console: Console) -> None:
    """The lab's blur numbers (20–30 on the old Laplacian scale) beside the new measure's cuts.

    The eye line (±30°) and the face area (40 %) are the lab's own measures, unchanged."""
    judged = [s for s in samples if s.found and s.measures is not None and s.label != "duplicate"]
    table = Table(title="blur cuts: the lab's old scale against the new one (same faces)")
    for column in ("cut", "blurry flagged", "good flagged", "sharp faces flagged"):
        table.add_column(column, justify="right")
    blurry = [s for s in judged if s.label == "blurry"]
    good = [s for s in judged if s.label == "good"]
    sharp = [s for s in judged if s.label != "blurry"]  # every class but blur: sharp pixels
    for name, key in (("old laplacian", "laplacian"), ("new sharpness", "sharpness")):
        for cut in (20.0, 25.0, 30.0):

            def share(group: list[Sample], key: str = key, cut: float = cut) -> str:
                below = sum(getattr(s.measures, key) < cut for s in group)
                return _share(below, len(group))

            table.add_row(f"{name} < {cut:g}", share(blurry), share(good), share(sharp))
    console.print(table)
    band = [s.measures.sharpness for s in judged if 20 <= s.measures.laplacian <= 30]
    if band:
        console.print(
            f"faces at the lab's cut (laplacian 20–30): new sharpness "
            f"{min(band):.0f}–{max(band):.0f}, median {np.median(band):.0f} "
            f"({len(band)} faces); the new default is {rules.blur:g}"
        )


def _count(rows: list[Sample]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in rows:
        kind = s.kind.split(" r=")[0] if s.kind.startswith("defocus") else s.kind
        kind = "motion" if kind.startswith("motion") else kind
        out[f"{s.label}/{kind}"] = out.get(f"{s.label}/{kind}", 0) + 1
    return out


def contact_sheet(samples: list[Sample], path: Path, per_class: int = 12, seed: int = 0) -> None:
    """A sample of each class's delivered crops, labelled with the damage and the new reasons."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in RIGHT:
        group = [s for s in samples if s.label == label and s.crop is not None]
        if label == "duplicate":
            group = group[:per_class]
        else:
            group = [
                group[i] for i in rng.choice(len(group), min(per_class, len(group)), replace=False)
            ]
        tiles = []
        for s in group:
            tile = cv2.cvtColor(
                cv2.resize(s.crop, (160, 160), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR
            )
            cv2.putText(
                tile,
                f"{label[:5]} {s.kind[:20]}",
                (2, 11),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.32,
                (0, 255, 255),
                1,
            )
            cv2.putText(
                tile,
                ",".join(s.new)[:26] or "passes",
                (2, 156),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.32,
                (0, 255, 0),
                1,
            )
            tiles.append(tile)
        tiles += [np.zeros((160, 160, 3), np.uint8)] * (per_class - len(tiles))
        rows.append(np.hstack(tiles))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=12, help="static shots for duplicates")
    parser.add_argument("--sheet", type=Path, default=OUT / "quality-sheet.png")
    parser.add_argument("--float32", action="store_true", help="the float32 models on a CPU too")
    args = parser.parse_args()
    console = Console(width=120)
    cfg = config.Config()
    if args.float32:
        cfg = replace(cfg, models=replace(cfg.models, cpu_int8=False))
    srcs = sources(config.models_dir(cfg))
    samples = make_set(srcs, args.seed) + duplicate_shots(srcs, args.seed, args.shots)
    detector, embedder = registry.load(cfg)
    judge(samples, detector, cfg.rules, args.seed)
    judge_duplicates(samples, embedder, cfg.rules, cfg.cluster)
    console.print(f"{len(srcs)} real faces, {len(samples)} labelled renders (seed {args.seed})")
    report(samples, console)
    lab_mapping(samples, cfg.rules, console)
    contact_sheet(samples, args.sheet, seed=args.seed)
    console.print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
