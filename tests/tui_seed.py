"""A workspace for the TUI tests written row by row: real face pixels, fixed faces, no detector.

The review screens are snapshotted from this catalogue, so the encoder, the detector and the
embedder installed on a machine cannot change what the screens show.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reelface import catalogue, synth, workspace
from reelface.config import ClusterConfig
from reelface.identity import identify
from reelface.models.base import ModelFile
from reelface.pipeline import decode, quality, thumbs
from reelface.pipeline.results import crop_name

CROP = 256
DIM = 512  # an ArcFace-sized embedding, so the clustering uses the ArcFace thresholds
FPS = 25.0
BOX = 120  # pixels per face box in the 960×540 frame
# (slug, faces per person): film B shows persons 0 and 1 again, so links are suggested.
FILMS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("seeded-film-a", (9, 7, 5, 3)),
    ("seeded-film-b", (4, 2)),
)
# Reasons given to some faces (by index within a person), so filters and captions have work.
REASONS: dict[int, list[str]] = {
    1: ["blurry: sharpness 21.4 < 40"],
    3: ["incomplete: 18% of the face is outside the frame"],
    4: ["profile: yaw 48°"],
    6: ["blurry: sharpness 12.0 < 40", "tilted: roll 31° > 25"],
}


def face_pictures(count: int) -> list[np.ndarray]:
    """`count` RGB face crops: real faces from photos shipped in packages, else fixed patterns."""
    out: list[np.ndarray] = []
    marks = synth.package_landmarks()
    for name, path in sorted(synth.package_photos().items()):
        photo = synth.load_photo(path)
        for points in marks[name]:
            out.append(_crop(photo, points))
    while len(out) < count:  # a machine without those packages still gets distinct tiles
        out.append(_pattern(len(out)))
    return out[:count]


def _crop(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A square around five landmarks, three eye distances wide, padded outside the photo."""
    centre = points.mean(axis=0)
    half = int(1.5 * np.linalg.norm(points[1] - points[0])) + 1
    pad = cv2.copyMakeBorder(photo, half, half, half, half, cv2.BORDER_REPLICATE)
    x, y = int(centre[0]), int(centre[1])
    square = pad[y : y + 2 * half, x : x + 2 * half]
    return cv2.resize(square, (CROP, CROP), interpolation=cv2.INTER_AREA)


def _pattern(index: int) -> np.ndarray:
    ramp = np.linspace(0, 255, CROP, dtype=np.float64)
    rgb = np.stack(np.meshgrid(ramp, ramp[::-1]) + [np.full((CROP, CROP), 40.0 * index % 255)], -1)
    return rgb.astype(np.uint8)


def seed(root: Path) -> workspace.Workspace:
    """Make a workspace at root holding FILMS, clustered, with crops and thumbnails on disk."""
    ws = workspace.init(root)
    rng = np.random.default_rng(7)
    people = max(len(counts) for _, counts in FILMS)
    bases = rng.normal(size=(people, DIM))
    pictures = face_pictures(people)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        detector = catalogue.model_id(conn, ModelFile("detector", "seeded", "seeded", "0" * 64))
        embedder = catalogue.model_id(conn, ModelFile("embedder", "seeded", "seeded", "1" * 64))
        for number, (slug, counts) in enumerate(FILMS):
            film_id = _add_film(conn, ws, slug, number, max(counts))
            records = []
            for person, count in enumerate(counts):
                for index in range(count):
                    records.append(
                        _face(ws, slug, person, index, pictures[person], bases[person], rng)
                    )
            catalogue.commit_batch(
                conn, film_id, records, max(counts) - 1, max(counts), 0, detector, embedder
            )
            catalogue.set_film_state(conn, film_id, "done")
            identify.cluster_film(conn, film_id, ClusterConfig())
    finally:
        conn.close()
    return ws


def _add_film(
    conn: catalogue.sqlite3.Connection, ws: workspace.Workspace, slug: str, number: int, frames: int
) -> int:
    info = decode.FilmInfo(
        path=str(ws.root / "sources" / f"{slug}.mp4"),
        kind="video",
        size_bytes=1000 + number,
        content_hash=f"{number:064d}",
        duration=frames / FPS,
        fps=FPS,
        width=960,
        height=540,
        codec="h264",
        frames_total=frames,
    )
    return catalogue.add_film(conn, info, slug, {"interval": 1, "size": CROP})


def _face(
    ws: workspace.Workspace,
    slug: str,
    person: int,
    index: int,
    picture: np.ndarray,
    base: np.ndarray,
    rng: np.random.Generator,
) -> catalogue.FaceRecord:
    # Every person keeps one place in the frame, so consecutive frames form one track each.
    x, y = 40 + person * (BOX + 100), 200
    box = np.array([x, y, x + BOX, y + BOX], np.float64)
    landmarks = np.array([[x + 35, y + 45], [x + 85, y + 45], [x + 60, y + 70], [x + 40, y + 95],
                          [x + 80, y + 95]], np.float64)  # fmt: skip
    path = ws.film_dir(slug) / "faces" / crop_name(index, person)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A little brightness change per face, so tiles of one person are not pixel copies.
    pixels = np.clip(picture.astype(np.int16) + (index % 3 - 1) * 12, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    crop_path = str(path.relative_to(ws.root))
    thumbs.write_thumb(thumbs.thumb_path(ws.root, crop_path), pixels)
    reasons = REASONS.get(index, [])
    embedding = base + rng.normal(scale=0.35, size=base.shape)
    return catalogue.FaceRecord(
        frame=index,
        slot=person,
        pts=index / FPS,
        source=None,
        box=box,
        landmarks=landmarks,
        landmarks_crop=landmarks - box[:2],
        matrix=np.eye(3)[:2],
        crop_size=CROP,
        crop_path=crop_path,
        measures={"score": 0.9, "sharpness": 80.0 - 7.0 * index, "yaw": 4.0 * index},
        reasons=reasons,
        passed=quality.passes(reasons),
        embedding=(embedding / np.linalg.norm(embedding)).astype(np.float32),
    )
