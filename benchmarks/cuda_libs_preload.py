"""What loading Whisper's CUDA 12 libraries costs a process, on a machine where Whisper runs on the CPU.

Until 2026-12-07 every process that loaded Whisper preloaded NVIDIA's cuBLAS 12 and cuDNN 9 wheels' libraries
wherever they were installed (.venv-cuda, the CUDA build), GPU or not. Now only cuBLAS is carried (CTranslate2 4.8
opens no cuDNN) and it is loaded only for Whisper on a GPU. This loads each set, as ``jarvis.cuda_libs.preload``
does (``RTLD_GLOBAL``, in load order), in fresh processes, and records the time and the resident memory it adds.

Needs the wheels unpacked into one folder (``pip install --no-deps --target SITE nvidia-cublas-cu12==12.9.3.13
nvidia-cudnn-cu12==9.28.0.42``). Run: .venv/bin/python benchmarks/cuda_libs_preload.py SITE [--runs 5] [--out F]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

SETS = {
    "cublas (loaded now, only for Whisper on a GPU)": ["cublas/lib/libcublasLt.so.12", "cublas/lib/libcublas.so.12"],
    "cublas + cudnn (loaded before, for Whisper anywhere)": [
        "cublas/lib/libcublasLt.so.12", "cublas/lib/libcublas.so.12", "cudnn/lib/libcudnn.so.9",
        "cudnn/lib/libcudnn_ops.so.9", "cudnn/lib/libcudnn_cnn.so.9", "cudnn/lib/libcudnn_graph.so.9",
        "cudnn/lib/libcudnn_engines_precompiled.so.9", "cudnn/lib/libcudnn_engines_runtime_compiled.so.9",
        "cudnn/lib/libcudnn_heuristic.so.9", "cudnn/lib/libcudnn_adv.so.9"],
}
PROBE = """
import ctypes, json, sys, time
def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
before, start, loaded = rss_mb(), time.perf_counter(), 0
for path in sys.argv[1:]:
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        loaded += 1
    except OSError:
        pass
print(json.dumps({"ms": (time.perf_counter() - start) * 1000, "rss_mb": rss_mb() - before, "loaded": loaded}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="folder holding nvidia/cublas and nvidia/cudnn")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, libs in SETS.items():
        paths = [str(args.site / "nvidia" / rel) for rel in libs]
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            print(f"error: {missing[0]} is missing: unpack the wheels into {args.site}", file=sys.stderr)
            return 2
        runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE, *paths], capture_output=True, text=True,
                                          check=True).stdout) for _ in range(args.runs)]
        rows.append({"set": name, "libraries": len(libs), "loaded": runs[0]["loaded"],
                     "ms_median": round(statistics.median(r["ms"] for r in runs), 1),
                     "rss_mb_median": round(statistics.median(r["rss_mb"] for r in runs), 1)})
        print(f"{name}: {rows[-1]['loaded']}/{len(libs)} loaded, {rows[-1]['ms_median']} ms, "
              f"+{rows[-1]['rss_mb_median']} MB resident (median of {args.runs})")
    if args.out:
        info = open("/proc/cpuinfo").read().splitlines()
        cpu = next((l.split(":", 1)[1].strip() for l in info if l.startswith("model name")), "?")
        flags = next((l.split(":", 1)[1].split() for l in info if l.startswith("flags")), [])
        cpu += " with AVX-512" if "avx512f" in flags else " without AVX-512"
        args.out.write_text(json.dumps({
            "benchmark": "cuda_libs_preload", "date": date.today().isoformat(), "runs": args.runs,
            "hardware": f"{cpu}, {len(os.sched_getaffinity(0))} cores, no GPU", "python": platform.python_version(),
            "command": " ".join(["benchmarks/cuda_libs_preload.py", *sys.argv[1:]]),
            "what": __doc__.split("\n\n")[1].replace("\n", " "), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
