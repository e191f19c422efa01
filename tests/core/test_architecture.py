"""The core (jarvis/ minus jarvis/ui/) never imports Qt: checked by import-linter and at run time."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contract_holds():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_the_contract_covers_every_core_module():
    import pkgutil
    import tomllib

    import jarvis

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    top_level = {f"jarvis.{m.name}" for m in pkgutil.iter_modules(jarvis.__path__)}
    # jarvis.app is the composition root (it starts the Qt app); jarvis.__main__ only calls it.
    assert top_level - {"jarvis.ui", "jarvis.app", "jarvis.__main__"} == set(contract["source_modules"])


def test_importing_every_core_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, jarvis\n"
        "for m in pkgutil.walk_packages(jarvis.__path__, 'jarvis.'):\n"
        "    if not m.name.startswith('jarvis.ui'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'qasync')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
