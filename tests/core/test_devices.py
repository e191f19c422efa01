"""Compute device probes on this GPU-less machine (no NVIDIA driver, CPU build of torch)."""
from __future__ import annotations

import json
import subprocess
import sys

from jarvis import devices


def test_importing_devices_does_not_import_torch():
    code = "import sys, jarvis.devices; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_gpu_memory_without_a_driver_is_empty_and_does_not_import_torch():
    # pynvml.nvmlInit() raises NVMLError_LibraryNotFound here; that must read as "no GPU".
    code = ("import sys, jarvis.devices as d; print(d.gpu_memory()); "
            "assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _torch_best() -> str:
    import torch
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def test_best_device_is_what_torch_sees():
    assert devices.best_device() == _torch_best()


def test_gpu_memory_lists_exactly_the_gpus_torch_sees():
    import torch  # (the torch path must not invent a GPU either)
    gpus = devices.gpu_memory()
    assert len(gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_describe_compute_shape():
    info = devices.describe_compute()
    import torch
    assert info["torch"] == torch.__version__
    assert info["cuda_available"] is torch.cuda.is_available()
    assert len(info["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert isinstance(info["mps_available"], bool)
    assert info["best_device"] == _torch_best()
    assert "cuda_version" in info
    assert "error" not in info
    json.dumps(info)


def test_nvml_rows_with_a_fake_driver(monkeypatch):
    # A fake pynvml: no NVIDIA driver exists here, and the per-process bookkeeping is under test.
    import os
    import types

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        gib = 1024 ** 3
        proc = types.SimpleNamespace
        fake = types.ModuleType("pynvml")
        fake.NVMLError = RuntimeError
        fake.nvmlInit = fake.nvmlShutdown = lambda: None
        fake.nvmlDeviceGetCount = lambda: 1
        fake.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"
        fake.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
        fake.nvmlDeviceGetUUID = lambda h: "GPU-1234"
        fake.nvmlDeviceGetMemoryInfo = lambda h: proc(total=80 * gib, used=10 * gib, free=70 * gib)
        fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [
            proc(pid=os.getpid(), usedGpuMemory=2 * gib), proc(pid=child.pid, usedGpuMemory=gib),
            proc(pid=999_999_999, usedGpuMemory=7 * gib)]
        fake.nvmlDeviceGetGraphicsRunningProcesses = lambda h: [proc(pid=os.getpid(), usedGpuMemory=2 * gib)]
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        assert devices.gpu_memory() == [{
            "index": 0, "name": "NVIDIA H100 80GB HBM3", "total_bytes": 80 * gib, "used_bytes": 10 * gib,
            "process_bytes": 2 * gib, "children_bytes": gib, "torch_reserved_bytes": None,
            "source": "nvml"}]
        # Drivers that list processes without their memory (WDDM, some containers) give None.
        fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [proc(pid=os.getpid(), usedGpuMemory=None)]
        fake.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
        assert devices.gpu_memory()[0]["process_bytes"] is None
    finally:
        child.kill()
        child.wait()

