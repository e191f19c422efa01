"""The build's helpers on their own (fast): what trim() leaves out, the licence notices, and the Windows
installer script's references (Inno Setup cannot run here, so only its consistency with the build is checked)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import PySide6

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installer"))

import licenses  # noqa: E402
import trim  # noqa: E402

QT = Path(PySide6.__file__).parent / "Qt"


def _entry(dest: str, src: Path) -> tuple[str, str, str]:
    return dest, str(src), "BINARY"


def test_trim_drops_the_gtk_theme_plugin_and_the_libraries_only_it_needs():
    gtk_plugin = QT / "plugins" / "platformthemes" / "libqgtk3.so"
    xcb_plugin = QT / "plugins" / "platforms" / "libqxcb.so"
    libs = Path("/usr/lib/x86_64-linux-gnu")
    binaries = [_entry("PySide6/Qt/plugins/platformthemes/libqgtk3.so", gtk_plugin),
                _entry("PySide6/Qt/plugins/platforms/libqxcb.so", xcb_plugin),
                _entry("libgtk-3.so.0", libs / "libgtk-3.so.0"), _entry("libgdk-3.so.0", libs / "libgdk-3.so.0"),
                _entry("libX11.so.6", libs / "libX11.so.6"),
                _entry("libdbus-1.so.3", libs / "libdbus-1.so.3"),
                _entry("torch/lib/libtorchbind_test.so", gtk_plugin)]
    datas = [("torch/test/atest", __file__, "DATA"), ("PySide6/Qt/translations/qt_de.qm", __file__, "DATA"),
             ("resources/icons/jarvis.svg", str(ROOT / "resources/icons/jarvis.svg"), "DATA")]
    kept_bins, kept_datas, dropped = trim.trim(binaries, datas)
    kept = [dest for dest, _, _ in kept_bins + kept_datas]
    assert kept == ["PySide6/Qt/plugins/platforms/libqxcb.so", "libX11.so.6", "libdbus-1.so.3",
                    "resources/icons/jarvis.svg"]
    assert {dest for dest, _ in dropped} >= {"libgtk-3.so.0", "libgdk-3.so.0", "torch/test/atest",
                                             "PySide6/Qt/plugins/platformthemes/libqgtk3.so"}


def test_licence_notices_name_each_bundled_distribution_with_its_licence_texts(tmp_path):
    dists = licenses.bundled_distributions(["piper.voice", "torch.nn", "faster_whisper"],
                                           ["PySide6/Qt/lib/libQt6Core.so.6"])
    assert {"piper-tts", "torch", "faster-whisper"} <= set(dists) and any(n.startswith("PySide6") for n in dists)
    summary = licenses.write(tmp_path / "licenses", dists)
    table = summary.read_text()
    assert re.search(r"\| piper-tts \| [\d.]+ \| GPL-3.0-or-later \| \d+ file", table), table
    assert (tmp_path / "licenses" / "piper-tts" / "COPYING").read_text().startswith(" " * 20 + "GNU GENERAL")
    assert (tmp_path / "licenses" / "torch" / "LICENSE").is_file()
    assert "GNU GENERAL PUBLIC LICENSE" in (tmp_path / "licenses" / "LICENSE").read_text()


def test_the_windows_installer_script_matches_the_build():
    iss = (ROOT / "installer" / "windows" / "jarvis.iss").read_text()
    spec = (ROOT / "installer" / "jarvis.spec").read_text()
    build = (ROOT / "installer" / "windows" / "build.ps1").read_text()
    for exe in re.findall(r'\{app\}\\([\w-]+)\.exe', iss):
        assert f'name="{exe}"' in spec, f"{exe}.exe is not built by jarvis.spec"
    for path in re.findall(r'\{#Root\}\\([^"\s;]+)', iss):
        if not path.startswith("dist"):
            assert (ROOT / path.replace("\\", "/")).exists(), path
    for requirements in re.findall(r"requirements[\w-]*\.txt", build):
        assert (ROOT / requirements).is_file(), requirements
    assert "jarvis-cli.exe --self-test" in build
