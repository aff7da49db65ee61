"""The console script's quick exit loses no output, exit code, atexit handler or running thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_buffered_output_atexit_handlers_and_the_code_survive() -> None:
    done = _python("""
        import atexit, sys
        from reelface.cli.entry import quick_exit
        atexit.register(lambda: print("handler ran"))
        print("x" * 200_000)
        print("to stderr", file=sys.stderr)
        quick_exit(3)
    """)
    assert done.returncode == 3
    assert done.stdout == "x" * 200_000 + "\nhandler ran\n"
    assert done.stderr == "to stderr\n"


def test_a_running_thread_is_waited_for() -> None:
    done = _python("""
        import threading, time
        from reelface.cli.entry import quick_exit
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
        quick_exit(0)
    """)
    assert done.returncode == 0 and done.stdout == "thread finished\n"


def test_the_command_line_keeps_its_codes_and_messages(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(tmp_path), "init"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and (tmp_path / "reelface.toml").exists()
    missing = tmp_path / "no such film.mp4"
    failed = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(tmp_path), "extract", str(missing)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0
    assert str(missing) in failed.stderr
    message = _python("from reelface.cli.entry import quick_exit; quick_exit('stopped: why')")
    assert message.returncode == 1 and message.stderr == "stopped: why\n"
