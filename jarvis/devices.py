"""Compute device choice and GPU memory figures (torch / NVML).

torch is imported lazily (inside the functions), never at module import: importing it costs
seconds and must happen after the start-up environment is set. Nothing here raises because a
GPU, a driver or torch is missing; those read as "no GPU".
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)


def best_device() -> str:
    """``"cuda"``, then ``"mps"``, then ``"cpu"``."""
    try:
        import torch
    except Exception:  # not installed or broken install: the CPU still works
        return "cpu"
    try:
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
    except Exception:
        log.debug("device probe failed", exc_info=True)
    return "cpu"


def describe_compute() -> dict[str, Any]:
    """torch version, CUDA/MPS availability and device names (JSON-serialisable)."""
    info: dict[str, Any] = {"torch": None, "cuda_available": False, "cuda_version": None,
                            "devices": [], "mps_available": False, "best_device": "cpu"}
    try:
        import torch
    except Exception as exc:
        info["error"] = f"torch cannot be imported: {exc}"
        return info
    info["torch"] = torch.__version__
    info["cuda_version"] = torch.version.cuda
    try:
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        info["mps_available"] = bool(mps is not None and mps.is_available())
    except Exception as exc:
        info["error"] = f"device probe failed: {exc}"
    info["best_device"] = best_device()
    return info


def gpu_memory() -> list[dict[str, Any]]:
    """Memory per NVIDIA GPU; ``[]`` when there is none (or no driver).

    Each dict: ``index``, ``name``, ``total_bytes``, ``used_bytes`` (device-wide),
    ``process_bytes`` and ``children_bytes`` (this process and its child processes, from NVML;
    ``None`` where NVML cannot tell, e.g. inside some containers), ``torch_reserved_bytes``
    (torch's caching allocator, or ``None``) and ``source`` (``"torch"`` or ``"nvml"``).

    Device-wide figures come from ``torch.cuda.mem_get_info`` when torch has already
    initialised CUDA in this process (the model host), else from NVML. We never import torch
    or create a CUDA context just to read memory: a context alone costs hundreds of MB.
    """
    nvml_rows = _nvml_rows()
    torch_rows = _torch_rows()
    if not torch_rows:
        return [{k: v for k, v in row.items() if k != "uuid"} for row in nvml_rows]
    by_uuid = {row["uuid"]: row for row in nvml_rows}
    for row in torch_rows:
        match = by_uuid.get(row.pop("uuid"))
        row["process_bytes"] = match["process_bytes"] if match else None
        row["children_bytes"] = match["children_bytes"] if match else None
    return torch_rows


def _torch_rows() -> list[dict[str, Any]]:
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    try:
        if not torch.cuda.is_initialized():
            return []
        rows = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            props = torch.cuda.get_device_properties(i)
            uuid = getattr(props, "uuid", None)
            rows.append({"index": i, "name": props.name, "total_bytes": int(total),
                         "used_bytes": int(total - free), "process_bytes": None,
                         "children_bytes": None,
                         "torch_reserved_bytes": int(torch.cuda.memory_reserved(i)),
                         "source": "torch", "uuid": f"GPU-{uuid}" if uuid is not None else None})
        return rows
    except Exception:
        log.debug("torch CUDA memory probe failed", exc_info=True)
        return []


def _nvml_rows() -> list[dict[str, Any]]:
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound without a driver, ImportError without nvidia-ml-py
        return []
    try:
        own, children = _process_ids()
        rows = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            process_bytes, children_bytes = _per_process(pynvml, handle, own, children)
            rows.append({"index": i, "name": _text(pynvml.nvmlDeviceGetName(handle)),
                         "total_bytes": int(mem.total), "used_bytes": int(mem.used),
                         "process_bytes": process_bytes, "children_bytes": children_bytes,
                         "torch_reserved_bytes": None, "source": "nvml",
                         "uuid": _text(pynvml.nvmlDeviceGetUUID(handle))})
        return rows
    except Exception:
        log.debug("NVML memory probe failed", exc_info=True)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _per_process(pynvml, handle, own: int, children: set[int]) -> tuple[int | None, int | None]:
    """Bytes used on one GPU by this process and by its children (compute + graphics)."""
    try:
        procs = list(pynvml.nvmlDeviceGetComputeRunningProcesses(handle))
        try:
            procs += pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)
        except pynvml.NVMLError:
            pass
    except Exception:
        return None, None
    seen: dict[int, int | None] = {}
    for p in procs:  # a process using compute and graphics appears twice with the same figure
        if p.usedGpuMemory is None:
            seen.setdefault(p.pid, None)
        else:
            seen[p.pid] = max(seen.get(p.pid) or 0, int(p.usedGpuMemory))
    if any(seen.get(pid, 0) is None for pid in {own, *children}):
        return None, None  # listed, but the driver does not report its memory (e.g. WDDM)
    return int(seen.get(own) or 0), int(sum(seen.get(pid) or 0 for pid in children))


def _process_ids() -> tuple[int, set[int]]:
    own = os.getpid()
    try:
        import psutil
        return own, {c.pid for c in psutil.Process(own).children(recursive=True)}
    except Exception:
        return own, set()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
