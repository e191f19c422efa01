"""numpy's BLAS runs on one thread in the assistant and its worker processes (jarvis.blas): OpenBLAS's idle threads
spin after each small product and took the core Whisper's worker needed at a command's pause. Counted by
threadpoolctl, which asks OpenBLAS itself, in fresh processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, multiprocessing, sys

def blas_threads():
    from threadpoolctl import threadpool_info
    return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})

def report(queue):
    import numpy, scipy.linalg   # as the worker process loads them
    queue.put(blas_threads())

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "numpy first":
        import numpy
    if mode != "unlimited":
        from jarvis import app
        app._prepare_environment()   # what `jarvis` does first
    import numpy, scipy.linalg
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=report, args=(queue,))
    child.start()
    print(json.dumps({"here": blas_threads(), "worker": queue.get(timeout=60)}))
    child.join()
"""


def _threads(folder: Path, mode: str, **env: str) -> dict:
    script = folder / "blas_threads.py"   # a file: the spawned child imports its main module
    script.write_text(_SCRIPT)
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=120,
                         cwd=folder, env=environment)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_assistant_and_its_worker_processes_use_one_blas_thread(tmp_path):
    assert _threads(tmp_path, "app") == {"here": [1], "worker": [1]}


def test_numpy_loaded_before_the_assistant_starts_is_limited_too(tmp_path):
    assert _threads(tmp_path, "numpy first") == {"here": [1], "worker": [1]}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS uses one thread on one core anyway")
def test_a_thread_count_the_user_set_is_kept(tmp_path):
    assert _threads(tmp_path, "app", OPENBLAS_NUM_THREADS="2") == {"here": [2], "worker": [2]}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS uses one thread on one core anyway")
def test_without_the_limit_openblas_would_use_more_than_one(tmp_path):
    """The check above can fail: unlimited, OpenBLAS starts a thread per core."""
    threads = _threads(tmp_path, "unlimited")
    assert max(threads["here"]) > 1 and max(threads["worker"]) > 1
