"""Model files' SHA-256, remembered across runs by their size, times and inode.

Every model load records the hashes of its files; hashing them anew cost each `reelface` start
25 ms (the 22 MB dlib weights). A file rewritten in any way gets a new size, mtime or ctime and
is hashed again, as git's index trusts stat data.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from reelface.io import atomic_write, sha256_file

_seen: dict[str, list] = {}  # this process's entries: one read of the cache file per process


def cache_path() -> Path:
    """The cache, beside the models' own cache ($XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reelface" / "sha256.json"


def _stamp(path: Path) -> list[int]:
    s = path.stat()
    return [s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino]


def _load(cache: Path) -> dict[str, list]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sha256_of(path: Path) -> str:
    """The file's SHA-256, from the cache when its size, times and inode are unchanged."""
    key, stamp = str(Path(path).resolve()), _stamp(path)
    cache = cache_path()
    if not _seen:
        _seen.update(_load(cache))
    entry = _seen.get(key)
    if isinstance(entry, list) and entry[:-1] == stamp:
        return str(entry[-1])
    digest = sha256_file(path)
    _seen[key] = [*stamp, digest]
    # Others' entries kept, those of files gone dropped (tests' temporary models).
    kept = {k: v for k, v in _load(cache).items() if os.path.exists(k)}
    with contextlib.suppress(OSError):  # an unwritable cache costs the next start the hashing
        atomic_write(cache, json.dumps({**kept, key: _seen[key]}).encode())
    return digest
