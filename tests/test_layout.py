"""The tree is the architecture: core imports neither daemon nor tui, only CLI modules import CLI
modules, modules stay short, and the README's paths exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = {"core": "reelface", "daemon": "reelface.daemon", "tui": "reelface.tui"}
# Entry points: `reelface`, `python -m reelface`, and the subcommands daemon/ and tui/ plug in.
CLI = ("reelface.cli", "reelface.__main__", "reelface.daemon.cli", "reelface.tui.cli")
# Longer on purpose: a verbatim table of SimSwap's parameter names (data, not logic).
LONG_OK = {
    "core/swap/simswap_keys.py",
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in TOP.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved, `from X import y` as X.y too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def _is_cli(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CLI)


def test_core_imports_neither_daemon_nor_tui() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in _modules().items()
        if not name.startswith(("reelface.daemon", "reelface.tui"))
        for target in _imports(name, path)
        if target.startswith(("reelface.daemon", "reelface.tui"))
    ]
    assert not wrong, "core is the library; daemon/ and tui/ plug into it:\n" + "\n".join(wrong)


def test_only_cli_modules_import_cli_modules() -> None:
    modules = _modules()
    wrong = [
        f"{name} imports {target}"
        for name, path in modules.items()
        if not _is_cli(name)
        for target in _imports(name, path)
        if _is_cli(target) and target in modules
    ]
    assert not wrong, "the library must not depend on its command line:\n" + "\n".join(wrong)


def test_the_checker_sees_a_wrong_way_import(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.py"
    bad.write_text("from ..cli.evaluate import run_eval\nfrom reelface.daemon import work\n")
    found = _imports("reelface.jobs.tasks", bad)
    assert "reelface.cli.evaluate" in found and "reelface.daemon" in found


@pytest.mark.parametrize("folder", sorted(TOP))
def test_modules_stay_short(folder: str) -> None:
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in LONG_OK
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, f"split these by job (≤ {MAX_LINES} lines):\n" + "\n".join(long)


def test_readme_paths_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`((?:core|daemon|tui|tests|bench|\.ci)/[\w./-]*)`", text))
    # Any path with a folder in it, and any Markdown file (bare module names may be others').
    cited |= set(re.findall(r"([\w.-]+/[\w./-]+\.(?:py|md|tcss|toml))\b", text))
    cited |= set(re.findall(r"`([\w.-]+\.md)`", text))
    assert cited, "the README's layout section names the tree's folders"
    missing = sorted(p for p in cited if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"README cites paths that are not in the repository: {missing}"


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject lists packages by name: a new folder left off is missing from every install
    that is not editable (a wheel, a server's venv)."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert found <= listed, f"add to pyproject.toml's packages: {sorted(found - listed)}"
