"""Which picture protocol the terminal speaks: asked of the terminal, then its environment.

The terminal is asked before Textual starts (Textual's input thread would take the replies): a
kitty graphics query, a cell-size query and primary device attributes (DA1, `4` = sixel), which
every terminal answers, so its reply ends the wait; no reply within the timeout falls back to the
environment (TERM, TERM_PROGRAM, KITTY_WINDOW_ID…) and then to half blocks.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

CHOICES = ("auto", "kitty", "sixel", "halfblock")
KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_QUERY = "\x1b[16t"  # reply: ESC [ 6 ; height ; width t
XTVERSION = "\x1b[>0q"  # reply: DCS > | name(version) ST, e.g. kitty(0.26.5)
PLACEHOLDERS = (0, 28)  # kitty draws Unicode placeholders from 0.28 on; older kitty: boxes
DA1 = "\x1b[c"
HINT = (  # one status line, ≤ 120 cells
    "half-block previews: run in kitty/WezTerm or xterm -ti vt340, or set tmux allow-passthrough on"
    " (reelface tui --probe)"
)
DEFAULT_CELL = (10, 20)  # a VT340's cell, when the terminal does not say


@dataclass(frozen=True)
class Graphics:
    """The protocol to draw with, the cell size in pixels, and why."""

    protocol: str = "halfblock"  # kitty, sixel or halfblock
    cell: tuple[int, int] = DEFAULT_CELL  # width, height in pixels
    tmux: bool = False  # kitty escapes go through tmux passthrough
    hint: str = ""  # a line for the user when pixels were wanted and not found
    found: str = "not asked"  # what detection saw, for --probe

    @property
    def pixels(self) -> bool:
        return self.protocol in ("kitty", "sixel")


@dataclass(frozen=True)
class Replies:
    """What the terminal answered (nothing when there is no terminal to ask)."""

    kitty: bool = False
    sixel: bool = False
    cell: tuple[int, int] | None = None
    answered: bool = False
    version: str = ""  # XTVERSION's reply, e.g. "kitty(0.26.5)"


def parse(reply: str) -> Replies:
    """Read the kitty, cell-size and DA1 replies out of whatever the terminal sent back."""
    kitty = bool(re.search(r"\x1b_Gi=31;OK", reply))
    cell = None
    if size := re.search(r"\x1b\[6;(\d+);(\d+)t", reply):
        height, width = int(size.group(1)), int(size.group(2))
        cell = (width, height) if width and height else None
    attributes = re.search(r"\x1b\[\?([\d;]*)c", reply)
    sixel = bool(attributes and "4" in attributes.group(1).split(";"))
    version = re.search(r"\x1bP>\|([^\x1b]*)\x1b\\", reply)
    return Replies(kitty, sixel, cell, attributes is not None, version.group(1) if version else "")


def old_kitty(version: str) -> bool:
    """Whether XTVERSION names a kitty older than 0.28, which shows placeholders as boxes."""
    found = re.fullmatch(r"kitty\((\d+)\.(\d+)[^)]*\)", version)
    return bool(found) and (int(found.group(1)), int(found.group(2))) < PLACEHOLDERS


def ask_terminal(tmux_passthrough: bool, timeout: float = 0.6) -> Replies:
    """Send the queries to the controlling terminal and read the replies (raw mode, restored)."""
    try:
        import termios
        import tty

        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except (ImportError, OSError):
        return Replies()
    kitty = _tmux_wrap(KITTY_QUERY) if tmux_passthrough else KITTY_QUERY
    try:
        saved = termios.tcgetattr(fd)
        tty.setraw(fd)
        try:
            os.write(fd, (kitty + CELL_QUERY + XTVERSION + DA1).encode())
            reply, deadline = b"", time.monotonic() + timeout
            while not re.search(rb"\x1b\[\?[\d;]*c", reply):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    break
                reply += os.read(fd, 4096)
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
    except (OSError, termios.error):
        return Replies()
    finally:
        os.close(fd)
    return parse(reply.decode("latin-1"))


def _tmux_wrap(escape: str) -> str:
    return "\x1bPtmux;" + escape.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def tmux_passthrough() -> bool:
    """Inside tmux, whether the pane lets escapes through to the outer terminal."""
    if not os.environ.get("TMUX") or not shutil.which("tmux"):
        return False
    try:
        shown = subprocess.run(["tmux", "show", "-Apv", "allow-passthrough"], capture_output=True,
                               text=True, timeout=2).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return shown.strip().splitlines()[-1:] in (["on"], ["all"])


def _tmux_client_term(what: str = "client_termname") -> str:
    """The TERM of the terminal tmux's client runs in (xterm-kitty, xterm-ghostty…), or with
    "client_termtype" its XTVERSION (kitty(0.26.5)…)."""
    try:
        shown = subprocess.run(["tmux", "display", "-p", f"#{{{what}}}"],
                               capture_output=True, text=True, timeout=2).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return shown.strip()


def from_environment(env: dict[str, str]) -> str:
    """The protocol the terminal's environment variables point to ("" when they say nothing)."""
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "").lower()
    if "kitty" in term or env.get("KITTY_WINDOW_ID") or program == "ghostty" or "ghostty" in term:
        return "kitty"
    if program == "wezterm" or env.get("KONSOLE_VERSION") or term.startswith(("foot", "mlterm")):
        return "sixel"
    return ""


def cell_size(fallback: tuple[int, int] | None) -> tuple[int, int]:
    """Pixels per cell: the tty's window size in pixels, else the terminal's reply, else VT340."""
    try:
        import fcntl
        import struct
        import termios

        with open("/dev/tty", "rb") as tty_file:
            rows, cols, xpixel, ypixel = struct.unpack(
                "HHHH", fcntl.ioctl(tty_file.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
            )
        if rows and cols and xpixel and ypixel:
            return xpixel // cols, ypixel // rows
    except (ImportError, OSError):
        pass
    return fallback or DEFAULT_CELL


def choose(setting: str = "auto", env: dict[str, str] | None = None, ask: bool = True) -> Graphics:
    """The protocol for `setting` (auto asks the terminal); half blocks when nothing is found."""
    env = dict(os.environ) if env is None else env
    in_tmux = bool(env.get("TMUX"))
    passthrough = tmux_passthrough() if in_tmux else False
    replies = ask_terminal(passthrough) if ask else Replies()
    cell = cell_size(replies.cell)
    found = (
        f"terminal replied: kitty graphics {'yes' if replies.kitty else 'no'}, "
        f"sixel {'yes' if replies.sixel else 'no'}; "
        if replies.answered
        else "terminal did not reply; "
    ) + f"TERM={env.get('TERM', '')} TERM_PROGRAM={env.get('TERM_PROGRAM', '')}"
    if in_tmux:
        found += f"; tmux allow-passthrough {'on' if passthrough else 'off'}"
    # In tmux, tmux answers XTVERSION itself; it keeps the outer terminal's as client_termtype.
    version = _tmux_client_term("client_termtype") if in_tmux and ask else replies.version
    if version:
        found += f"; XTVERSION {version}"
    if setting != "auto":
        return Graphics(setting, cell, in_tmux and setting == "kitty", "", found + "; forced")
    hinted = from_environment(env)
    if in_tmux and passthrough and not hinted:
        hinted = from_environment({"TERM": _tmux_client_term()})  # the terminal outside tmux
    # WezTerm and Konsole answer the kitty query but do not draw Unicode placeholders.
    placeholders = hinted != "sixel" and not old_kitty(version)
    if replies.kitty and placeholders and (passthrough or not in_tmux):
        protocol = "kitty"
    elif replies.sixel:
        protocol = "sixel"
    elif placeholders and hinted == "kitty" and (passthrough or not replies.answered):
        protocol = "kitty"  # in tmux, tmux answers DA1 itself and may keep the outer reply
    elif hinted and not replies.answered and not in_tmux:
        protocol = hinted
    else:
        hint = HINT if (replies.answered or in_tmux) else ""
        if old_kitty(version):
            hint = f"half-block previews: {version} has no Unicode placeholders (kitty 0.28+ has)"
        return Graphics("halfblock", cell, False, hint, found)
    return Graphics(protocol, cell, in_tmux and protocol == "kitty", "", found)
