"""Thumbnails in memory for the UI, read from the workspace's thumbnail files off the UI thread."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from reelface.pipeline import thumbs


class ThumbCache:
    """A bounded LRU of RGB thumbnails keyed by crop path; `load` is safe from worker threads."""

    def __init__(self, root: Path, capacity: int = 4096) -> None:
        self.root = root
        self.capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, crop_path: str) -> np.ndarray | None:
        with self._lock:
            pixels = self._items.get(crop_path)
            if pixels is not None:
                self._items.move_to_end(crop_path)
            return pixels

    def load(self, crop_path: str, make: bool = True) -> np.ndarray | None:
        """The thumbnail, read (or made, unless `make` is False: decoding a crop takes ~90 ms)
        on first use; None if its crop is gone, or if it is not made and `make` is False."""
        pixels = self.cached(crop_path)
        if pixels is not None:
            return pixels
        try:
            if make:
                pixels = thumbs.load_thumb(self.root, crop_path)
            elif (pixels := thumbs.read_thumb(self.root, crop_path)) is None:
                return None
        except (FileNotFoundError, OSError):
            return None
        with self._lock:
            self._items[crop_path] = pixels
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return pixels
