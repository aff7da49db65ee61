"""One face large: the crop, every measure and reason, and the source frame with its box."""

from __future__ import annotations

import json

import cv2
import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from ..background import BackgroundScreen
from ..model import FaceItem
from ..widgets.face_image import FaceImage


def source_frame(film_path: str, pts: float | None, source: str | None) -> np.ndarray | None:
    """The frame a face came from (a film seeked to its time, or the image file itself)."""
    from pathlib import Path

    from reelface.pipeline import decode

    path = Path(film_path)
    try:
        if path.is_dir():
            return decode.read_image(path / (source or ""))
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            target = pts or 0.0
            container.seek(
                int(target / stream.time_base) + (stream.start_time or 0),
                stream=stream,
                backward=True,
            )
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= target - 1e-3:
                    return frame.to_ndarray(format="rgb24")
    except Exception:  # a moved or damaged film: the detail still shows everything else
        return None
    return None


class FaceDetail(BackgroundScreen):
    """Escape goes back to the grid; the pictures load in a worker, the crop first."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="detail.back")]

    def __init__(self, face: FaceItem) -> None:
        super().__init__()
        self.face = face
        self.frame_note = "source frame: loading…"

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(id="pictures"):
                yield FaceImage(id="crop")
                yield FaceImage(id="frame")
            yield Static(self.metrics(), id="metrics")
        yield Footer()

    def metrics(self) -> str:
        face = self.face
        lines = [
            f"[b]face {face.id}[/]  film {face.film}  frame {face.frame}  {face.timecode}",
            f"verdict: {face.verdict or 'unreviewed'}   crop: {face.crop_path}",
            "reasons: " + ("; ".join(face.reasons) or "passes every rule"),
            "measures: "
            + "  ".join(f"{key} {value:.3g}" for key, value in sorted(face.measures.items())),
        ]
        return "\n".join([*lines, self.frame_note] if self.frame_note else lines)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        root = self.app.workspace.root
        crop = cv2.imread(str(root / self.face.crop_path), cv2.IMREAD_COLOR)
        if crop is not None:
            self.on_ui(self._show_crop, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        with self.app.worker_conn() as conn:
            row = conn.execute(
                "SELECT f.path, x.box FROM faces x JOIN films f ON f.id = x.film_id WHERE x.id = ?",
                (self.face.id,),
            ).fetchone()
        # Seeking the film can take a while: the catalogue is free for other workers meanwhile.
        frame = source_frame(row[0], self.face.pts, self.face.source) if row else None
        if frame is not None:
            x1, y1, x2, y2 = (int(v) for v in json.loads(row[1]))
            thickness = max(2, frame.shape[1] // 300)
            cv2.rectangle(frame, (x1, y1), (x2, y2), (255, 64, 64), thickness)
        self.on_ui(self._show_frame, frame)

    def _show_crop(self, pixels: np.ndarray) -> None:
        self.query_one("#crop", FaceImage).pixels = pixels

    def _show_frame(self, frame: np.ndarray | None) -> None:
        self.frame_note = "" if frame is not None else "source frame: cannot be read"
        self.query_one("#metrics", Static).update(self.metrics())
        if frame is not None:
            self.query_one("#frame", FaceImage).pixels = frame
