"""Helpers shared by the benchmarks: percentiles, the hardware line, package versions, the command line."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

from jarvis import cpu as cpu_info


def _rank(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` by nearest rank (no interpolation)."""
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def stats(seconds: list[float | None]) -> dict[str, float]:
    """Milliseconds: p50, p95, mean, min, max and n of ``seconds`` (None entries are left out)."""
    ms = sorted(s * 1000 for s in seconds if s is not None)
    if not ms:
        return {}
    return {"p50": round(statistics.median(ms), 1), "p95": round(_rank(ms, 0.95), 1),
            "mean": round(statistics.fmean(ms), 1), "min": round(ms[0], 1), "max": round(ms[-1], 1),
            "n": len(ms)}


def stats_ms(seconds: list[float], digits: int = 3) -> dict[str, float]:
    """``p50_ms``, ``p95_ms``, ``p99_ms``, ``max_ms``, ``mean_ms``, ``min_ms`` and ``n`` of ``seconds``."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {}
    return {"p50_ms": round(statistics.median(ms), digits), "p95_ms": round(_rank(ms, 0.95), digits),
            "p99_ms": round(_rank(ms, 0.99), digits), "max_ms": round(ms[-1], digits),
            "mean_ms": round(statistics.fmean(ms), digits), "min_ms": round(ms[0], digits), "n": len(ms)}


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


# CPU flags that change how fast the int8 and float kernels run (Whisper's CTranslate2, onnxruntime, llama.cpp): two
# machines both named "AMD EPYC" ran Whisper's 2 s clip in 292 and 498 ms, the second without AVX-512.
VECTOR_FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "VNNI"), ("avx_vnni", "AVX-VNNI"),
                ("amx_int8", "AMX"))


def cpu_vector_extensions(cpuinfo: str | None = None) -> str | None:
    """``"AVX2, no AVX-512"``, ``"AVX2, AVX-512, VNNI"``...: the CPU's vector extensions from ``/proc/cpuinfo``
    (or ``cpuinfo``'s text); None where it cannot be read (not Linux, not x86)."""
    flags = cpu_info.flags(cpuinfo)
    if flags is None:
        return None
    found = [label for flag, label in VECTOR_FLAGS if flag in flags]
    if "avx2" in flags and "avx512f" not in flags:
        found.append("no AVX-512")
    return ", ".join(found) or "none of " + ", ".join(label for _, label in VECTOR_FLAGS)


def hardware(gpu: str | None = None) -> str:
    """``"<CPU model> (<vector extensions>), N cores available, no GPU used"`` (or ``GPU <name> used``)."""
    extensions = cpu_vector_extensions()
    cpu = f"{cpu_name()} ({extensions})" if extensions else cpu_name()
    return f"{cpu}, {cpu_count()} cores available, " + (f"GPU {gpu} used" if gpu else "no GPU used")


def memory_gb() -> float | None:
    """Total RAM of the machine in GB (None when unknown)."""
    try:
        import psutil
        return round(psutil.virtual_memory().total / 1e9, 1)
    except Exception:
        return None


def versions(dists: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Python and each distribution's installed version ("not installed" when missing)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def command() -> str:
    """The command line as the user would type it (``jarvis ...``)."""
    return " ".join(["jarvis" if i == 0 else a for i, a in enumerate(sys.argv)])


def date() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json(path: str, result: dict) -> None:
    """Write a benchmark result (atomically, world-readable) and say so."""
    from pathlib import Path

    from jarvis.storage import atomic_write_json
    atomic_write_json(Path(path), result, mode=0o644)
    print(f"wrote {path}")
