"""Where a running benchmark's memory is: RSS of a process and its children, and the main process's resident
memory by mapping kind (glibc's heap, anonymous mappings by size, each library), one JSON line per sample.

    python benchmarks/rss_maps.py PID OUT.jsonl [EVERY_S]

Run beside ``jarvis bench pipeline --turns 100 …`` (its PID) to see which kind of mapping grows turn after turn:
glibc's per-thread arenas are 64 MB-aligned anonymous mappings, onnxruntime's and llama.cpp's large buffers
anonymous mappings of their own size. Reads /proc only (Linux).
"""
from __future__ import annotations

import json
import re
import sys
import time

import psutil

_RANGE = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def _kind(line: str) -> str:
    parts = line.split()
    low, high = (int(x, 16) for x in parts[0].split("-"))
    name = parts[5] if len(parts) > 5 else "[anon]"
    if name == "[anon]":
        size_mb = (high - low) >> 20
        return "[anon %s]" % ("64M+" if size_mb >= 60 else "8M+" if size_mb >= 8 else "1M+" if size_mb >= 1 else "small")
    return re.sub(r"[.-][0-9a-f]{8}\.so.*", ".so", name.rsplit("/", 1)[-1]) if "/" in name else name


def resident_by_kind(pid: int) -> dict[str, float]:
    """MB resident per mapping kind (kinds over 2 MB)."""
    kinds: dict[str, int] = {}
    kind = None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            if _RANGE.match(line):
                kind = _kind(line)
            elif line.startswith("Rss:") and kind:
                kinds[kind] = kinds.get(kind, 0) + int(line.split()[1])
    return {k: round(v / 1024, 1) for k, v in kinds.items() if v > 2048}


def main() -> int:
    pid, out = int(sys.argv[1]), sys.argv[2]
    every = float(sys.argv[3]) if len(sys.argv) > 3 else 15.0
    process = psutil.Process(pid)
    with open(out, "w") as samples:
        while process.is_running():
            try:
                row = {"t": round(time.time()), "procs": {}}
                for p in [process, *process.children(recursive=True)]:
                    row["procs"][f"{p.pid}:{p.name()}"] = round(p.memory_info().rss / 2**20, 1)
                row["main_maps"] = resident_by_kind(pid)
            except (psutil.Error, OSError):
                break
            samples.write(json.dumps(row) + "\n")
            samples.flush()
            time.sleep(every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
