"""Real pixels in the review: the sixel and kitty encoders, protocol detection, and the renderer
the app draws with (Pilot, headless: what it would write to the terminal)."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from reelface import workspace
from reelface.tui.app import ReelfaceApp
from reelface.tui.graphics import detect, kitty, sixel
from reelface.tui.graphics.detect import Graphics
from reelface.tui.graphics.pictures import Pictures
from reelface.tui.screens.detail import FaceDetail
from reelface.tui.screens.review import ReviewScreen


def face_like(height: int = 90, width: int = 84) -> np.ndarray:
    """A smooth picture with edges: gradients plus a disc, like a face on a background."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                    np.full_like(xx, 90)], -1).astype(np.uint8)  # fmt: skip
    cv2.circle(rgb, (width // 2, height // 2), min(width, height) // 3, (230, 180, 150), -1)
    return rgb


def decode_sixel(data: str) -> np.ndarray:
    """A reference decoder for what `sixel.encode` writes (registers, !runs, $, -): H×W×3."""
    body = re.fullmatch(r'\x1bP0;1;0q"1;1;(\d+);(\d+)(.*)\x1b\\', data, re.S)
    assert body, "not a DCS … q sixel string with raster attributes"
    width, height, rest = int(body.group(1)), int(body.group(2)), body.group(3)
    bands = -(-height // 6)
    out = np.zeros((bands * 6, width, 3), np.uint8)
    registers: dict[int, tuple[int, int, int]] = {}
    colour, x, top = 0, 0, 0
    for token in re.finditer(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?|!(\d+)(.)|([?-~])|(\$)|(-)", rest):
        if token.group(1) is not None:
            colour = int(token.group(1))
            if token.group(2) is not None:
                registers[colour] = tuple(round(int(token.group(i)) * 255 / 100) for i in (2, 3, 4))
            continue
        if token.group(8):
            x = 0
            continue
        if token.group(9):
            x, top = 0, top + 6
            continue
        count, char = (
            (int(token.group(5)), token.group(6)) if token.group(5) else (1, token.group(7))
        )
        bits = ord(char) - 63
        for row in range(6):
            if bits >> row & 1:
                out[top + row, x : x + count] = registers[colour]
        x += count
    return out[:height]


def test_sixel_round_trip_keeps_the_picture() -> None:
    rgb = face_like()
    data = sixel.encode(rgb)
    assert data.isascii() and data.count("\x1bP") == 1
    assert len(set(re.findall(r"#(\d+);2;", data))) <= 255
    back = decode_sixel(data)
    assert back.shape == rgb.shape
    error = np.abs(back.astype(int) - rgb.astype(int))
    assert error.mean() < 4 and np.percentile(error, 99) < 20  # 255 colours, percent registers


def test_sixel_of_many_colours_is_quantised_to_registers() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    data = sixel.encode(noise)
    registers = set(re.findall(r"#(\d+);2;", data))
    assert 2 <= len(registers) <= 255
    assert decode_sixel(data).shape == noise.shape  # 37 rows: the last band is partial


def test_kitty_chunks_reassemble_to_the_png() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)  # big PNG
    data = kitty.transmit(4242, rgb, 14, 7)
    escapes = re.findall(r"\x1b_G([^;\x1b]*);?([^\x1b]*)\x1b\\", data)
    *chunks, placement = escapes
    assert len(chunks) > 1 and all(len(payload) <= kitty.CHUNK for _, payload in chunks)
    assert chunks[0][0].startswith("a=t,f=100") and "i=4242" in chunks[0][0]
    assert [keys.endswith("m=1") for keys, _ in chunks] == [True] * (len(chunks) - 1) + [False]
    assert placement[0] == "a=p,U=1,i=4242,c=14,r=7,q=2"
    png = base64.standard_b64decode("".join(payload for _, payload in chunks))
    back = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert np.array_equal(back, rgb)


def test_kitty_through_tmux_and_placeholder_cells() -> None:
    wrapped = kitty.transmit(7, face_like(8, 8), 2, 1, tmux=True)
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b_G") and wrapped.endswith("\x1b\x1b\\\x1b\\")
    [strip] = kitty.placeholder_strips(0x0A0B0C, 3, 1)
    assert strip.cell_length == 3 and strip.text.count(kitty.PLACEHOLDER) == 3
    [segment] = list(strip)
    assert segment.style.color.triplet == (0x0A, 0x0B, 0x0C)  # the id, as the foreground


def test_parse_terminal_replies() -> None:
    replies = detect.parse("\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;4;22c")
    assert replies.kitty and replies.sixel and replies.cell == (10, 20) and replies.answered
    plain = detect.parse("\x1b[?1;2c")
    assert plain.answered and not plain.kitty and not plain.sixel


@pytest.mark.parametrize("setting", ["kitty", "sixel", "halfblock"])
def test_an_override_is_respected(setting: str) -> None:
    found = detect.choose(setting, env={"TERM": "dumb"}, ask=False)
    assert found.protocol == setting and not found.hint


def test_auto_with_nothing_detected_draws_half_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "tmux_passthrough", lambda: False)  # this tmux, if any
    found = detect.choose("auto", env={"TERM": "xterm-256color"}, ask=False)
    assert found.protocol == "halfblock" and not found.hint  # nobody asked: no terminal
    in_tmux = detect.choose("auto", env={"TERM": "tmux-256color", "TMUX": "/tmp/x,1,0"}, ask=False)
    assert in_tmux.protocol == "halfblock" and "allow-passthrough" in in_tmux.hint


def test_auto_follows_the_environment_when_the_terminal_is_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert detect.choose("auto", env={"TERM": "xterm-kitty"}, ask=False).protocol == "kitty"
    assert detect.choose("auto", env={"TERM_PROGRAM": "WezTerm"}, ask=False).protocol == "sixel"
    # kitty outside tmux, passthrough on: kitty through tmux, with Unicode placeholders.
    monkeypatch.setattr(detect, "tmux_passthrough", lambda: True)
    monkeypatch.setattr(detect, "_tmux_client_term", lambda: "xterm-kitty")
    found = detect.choose("auto", env={"TERM": "tmux-256color", "TMUX": "/tmp/x,1,0"}, ask=False)
    assert found.protocol == "kitty" and found.tmux and not found.hint


def test_tui_config_and_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reelface.cli import main
    from reelface.tui import settings

    # Whatever terminal runs the tests stays out of it: nothing answers, no tmux.
    monkeypatch.setattr(detect, "ask_terminal", lambda passthrough: detect.Replies())
    monkeypatch.setattr(detect, "tmux_passthrough", lambda: False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TMUX", "TERM_PROGRAM", "KITTY_WINDOW_ID", "KONSOLE_VERSION"):
        monkeypatch.delenv(name, raising=False)

    ws = workspace.init(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + '\n[tui]\ngraphics = "sixel"\n')
    assert settings.load(ws.config_path).graphics == "sixel"
    result = CliRunner().invoke(main, ["-w", str(ws.root), "tui", "--probe"])
    assert result.exit_code == 0, result.output
    assert "graphics: sixel (setting sixel)" in result.output
    result = CliRunner().invoke(main, ["-w", str(ws.root), "tui", "--probe", "--graphics", "auto"])
    assert "graphics: halfblock (setting auto)" in result.output and "detected:" in result.output
    ws.config_path.write_text(ws.config_path.read_text() + 'colour = "x"\n')
    with pytest.raises(Exception, match="unknown key"):
        settings.load(ws.config_path)


def test_fit_keeps_the_aspect_and_never_enlarges_exact() -> None:
    from reelface.tui.graphics.pictures import fit

    wide = face_like(50, 100)
    assert fit(wide, 40, 40).shape == (40, 40, 3)
    assert fit(wide, 40, 40, pad=False).shape == (20, 40, 3)
    assert fit(wide, 400, 400, exact=True, pad=False).shape == (50, 100, 3)


# -- the app ------------------------------------------------------------------------------------


def drive(root: Path, graphics: Graphics | None, script) -> None:
    """Run the app headless with `graphics`; every frame's image escapes are recorded."""

    async def main_() -> None:
        app = ReelfaceApp(workspace.Workspace(root), graphics)
        written: list[str] = []
        flush = app.pictures.flush

        def record(spans=None) -> str:
            out = flush(spans)
            written.append(out)
            return out

        app.pictures.flush = record
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app.push_screen(ReviewScreen(1))
            await settle(app, pilot)
            await script(app, pilot, written)

    asyncio.run(main_())


async def settle(app: ReelfaceApp, pilot) -> None:
    """Until the screens' work is done and applied, twice in a row (work may start more)."""
    quiet = 0
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
        busy = any(getattr(s, "working", lambda: False)() for s in app.screen_stack)
        loading = isinstance(app.screen, ReviewScreen) and app.screen.review is None
        quiet = 0 if busy or loading else quiet + 1
        if quiet == 2:
            return


def screen_text(app: ReelfaceApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def test_half_blocks_by_default_and_the_hint_when_pixels_were_not_found(seeded: Path) -> None:
    async def plain(app, pilot, written) -> None:
        assert app.pictures.protocol == "halfblock" and "▀" in screen_text(app)
        assert "allow-passthrough" not in screen_text(app) and not any(written)

    drive(seeded, None, plain)

    async def hinted(app, pilot, written) -> None:
        text = screen_text(app)
        assert "▀" in text and "half-block previews" in text and "allow-passthrough" in text

    drive(seeded, Graphics("halfblock", hint=detect.HINT), hinted)


def test_sixel_grid_sends_each_picture_once_and_a_key_sends_none(seeded: Path) -> None:
    async def script(app, pilot, written) -> None:
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and "▀" not in screen_text(app)
        sent = "".join(written)
        shown = [f for f in screen.grid.faces if f is not None]
        assert sent.count("\x1bP0;1;0q") >= len(shown) == 9
        written.clear()
        await pilot.press("k")
        await pilot.press("right")
        await settle(app, pilot)
        assert screen.review.cursor == 2
        assert "\x1bP" not in "".join(written)  # borders and captions redrawn, pictures kept
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, FaceDetail)
        written.clear()
        await pilot.press("z")
        await settle(app, pilot)
        zoom = "".join(written)
        # The 256-px crop fits the pane: drawn once, unscaled (raster attributes 256 × 256).
        assert '"1;1;256;256' in zoom and "zoom 1:1" in screen_text(app)

    drive(seeded, Graphics("sixel", cell=(10, 20)), script)


def test_kitty_grid_transmits_once_and_draws_placeholders(seeded: Path) -> None:
    async def script(app, pilot, written) -> None:
        text = screen_text(app)
        assert text.count(kitty.PLACEHOLDER) == 9 * 14 * 7  # nine faces of 14 × 7 cells
        sent = "".join(written)
        assert sent.count("a=p,U=1") == 9
        written.clear()
        await pilot.press("pagedown", "pageup")
        await settle(app, pilot)
        assert "a=t" not in "".join(written)  # placed again, never sent again

    drive(seeded, Graphics("kitty", cell=(10, 20)), script)


def test_zoom_pans_a_large_crop_at_one_to_one() -> None:
    """A 1024 crop in a 40×10-cell pane (400×120 px): the window moves by half its size."""
    pictures = Pictures(Graphics("sixel", cell=(10, 20)))
    assert pictures.box(40, 10) == (400, 198)  # whole 6-pixel bands
    crop = face_like(1024, 1024)
    pictures.prepare("zoom:a", crop[:198, :400], 40, 10, exact=True)
    assert pictures.ready("zoom:a", 40, 10)
    pictures.place("zoom:a", 0, 1, 40, 10)
    assert '"1;1;400;198' in pictures.flush()


def test_a_kitty_without_unicode_placeholders_gets_half_blocks_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian 12's kitty 0.26 answers the graphics query but draws placeholders as boxes."""
    for version, protocol in (("kitty(0.26.5)", "halfblock"), ("kitty(0.41.1)", "kitty")):
        reply = f"\x1b_Gi=31;OK\x1b\\\x1bP>|{version}\x1b\\\x1b[?62;22c"
        assert detect.parse(reply).version == version
        monkeypatch.setattr(detect, "ask_terminal", lambda *_a, r=reply, **_k: detect.parse(r))
        found = detect.choose("auto", env={"TERM": "xterm-kitty"})
        assert found.protocol == protocol, found
        assert ("0.26.5" in found.hint) == (protocol == "halfblock")
