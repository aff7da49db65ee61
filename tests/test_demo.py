"""`reelface demo`, the README's first command, needs only what `models install` checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The demo runs with the test extra's photo packages made unimportable, as on a runtime install.
BLOCKED = """
import sys
sys.modules["insightface"] = sys.modules["skimage"] = None
sys.argv = ["reelface", *sys.argv[1:]]
from reelface.cli import main
main()
"""


def test_demo_needs_no_test_packages(models_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run = [sys.executable, "-c", BLOCKED, "-w", str(ws)]
    demo = subprocess.run([*run, "demo", "--size", "256"], capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    films = subprocess.run([*run, "films", "--json"], capture_output=True, text=True)
    (film,) = json.loads(films.stdout)
    # Its shots hold still, so near-duplicates fold to their best faces: one or more per person.
    assert film["state"] == "done" and film["faces_passed"] >= 4
    # Outside the inbox, so a running daemon never claims it and moves it from under its row.
    assert Path(film["path"]).is_file() and "inbox" not in Path(film["path"]).parts
    # Gauss, Newton and two people of the Solvay photo, aligned: every kept crop is on disk.
    assert len(list((ws / "films" / film["slug"] / "faces").glob("*.png"))) == film["faces"]
