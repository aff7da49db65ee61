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
    """Escape goes back to the grid; the pictures load in a worker, the crop first.

    `z` zooms the delivered crop to one image pixel per screen pixel, so blur is judged at the
    size exported; the arrows (or hjkl) pan it by half a window."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("z", "zoom", "Zoom 1:1", id="detail.zoom"),
        Binding("left,h", "pan(-1, 0)", "←", show=False, id="detail.left"),
        Binding("right,l", "pan(1, 0)", "→", show=False, id="detail.right"),
        Binding("up,k", "pan(0, -1)", "↑", show=False, id="detail.up"),
        Binding("down,j", "pan(0, 1)", "↓", show=False, id="detail.down"),
    ]

    def __init__(self, face: FaceItem) -> None:
        super().__init__()
        self.face = face
        self.frame_note = "source frame: loading…"
        self.crop: np.ndarray | None = None  # the delivered crop, full size
        self.zoomed = False
        self.origin = (0, 0)  # zoomed: the crop pixel at the window's top left

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
        if self.zoomed:
            lines.append(self.zoom_note())
        return "\n".join([*lines, self.frame_note] if self.frame_note else lines)

    def zoom_note(self) -> str:
        if not self.app.pictures.graphics.pixels:
            return "zoom: the largest view (1:1 needs kitty or sixel graphics, see README)"
        if self.crop is None:
            return "zoom 1:1: loading the crop…"
        width, height = self.app.pictures.box(*self._crop_cells())
        x, y = self.origin
        full_h, full_w = self.crop.shape[:2]
        return (f"zoom 1:1: pixels {x}–{min(x + width, full_w)} × {y}–{min(y + height, full_h)} "
                f"of {full_w}×{full_h} (arrows or hjkl pan, z back)")  # fmt: skip

    def _crop_cells(self) -> tuple[int, int]:
        size = self.query_one("#crop", FaceImage).size
        return size.width, size.height

    def draw_crop(self) -> None:
        """The crop fitted to its pane, or zoomed: the window of it at 1:1 from `origin`."""
        if self.crop is None:
            return
        widget = self.query_one("#crop", FaceImage)
        pictures = self.app.pictures
        if not (self.zoomed and pictures.graphics.pixels):
            widget.show(self.crop, f"detail:{self.face.crop_path}")
        else:
            width, height = pictures.box(*self._crop_cells())
            full_h, full_w = self.crop.shape[:2]
            x = min(max(0, self.origin[0]), max(0, full_w - width))
            y = min(max(0, self.origin[1]), max(0, full_h - height))
            self.origin = (x, y)
            window = np.ascontiguousarray(self.crop[y : y + height, x : x + width])
            widget.show(window, f"zoom:{self.face.crop_path}@{x},{y}", exact=True)
        self.query_one("#metrics", Static).update(self.metrics())

    def action_zoom(self) -> None:
        self.zoomed = not self.zoomed
        # Blank until the pane has its new size: the picture it shows now would otherwise be
        # encoded and sent again at the interim size, for nothing (a 1024 crop: ~120 KB).
        self.query_one("#crop", FaceImage).show(None, "blank")
        self.set_class(self.zoomed, "zoom")
        self.call_after_refresh(self.draw_crop)  # once the crop's pane has its new size

    def action_pan(self, dx: int, dy: int) -> None:
        if not self.zoomed or self.crop is None:
            return
        width, height = self.app.pictures.box(*self._crop_cells())
        self.origin = (self.origin[0] + dx * width // 2, self.origin[1] + dy * height // 2)
        self.draw_crop()

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw_crop)

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
        self.crop = pixels
        self.draw_crop()

    def _show_frame(self, frame: np.ndarray | None) -> None:
        self.frame_note = "" if frame is not None else "source frame: cannot be read"
        self.query_one("#metrics", Static).update(self.metrics())
        if frame is not None:
            self.query_one("#frame", FaceImage).show(frame, f"frame:{self.face.id}")
