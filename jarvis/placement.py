"""Which device each model loads on (issue 16): a pure function of the machine's GPUs and the models' needs.

``place`` puts CSM (the largest need) on the GPU with the most free memory, then Whisper and the speaker encoder
wherever the most room is left, each only where its need fits under ``headroom``; what fits nowhere runs on the
CPU. ``gpu.placement`` settings pin a model to a GPU index or ``cpu`` (a pin to a GPU that is not there, or too
full, is said and the model goes where it fits). ``Placer`` makes the choice thread-safe for models that load in
parallel: each placement reserves its memory until the model has loaded.

Per-GPU precision: bfloat16 from compute capability 8.0 (Ampere) on, else float16; CUDA graphs from 7.0.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

GIB = 2 ** 30
HEADROOM = 0.85        # a model is placed on a GPU only if it leaves it at most this full


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    capability: tuple[int, int] = (8, 0)

    @property
    def precision(self) -> str:
        return "bfloat16" if self.capability >= (8, 0) else "float16"

    @property
    def cuda_graphs(self) -> bool:
        return self.capability >= (7, 0)


@dataclass(frozen=True)
class Need:
    model: str             # "csm", "whisper", "speaker_encoder"
    bytes: int


@dataclass
class Placement:
    device: dict[str, str] = field(default_factory=dict)      # model -> "cuda:N" | "cpu"
    precision: dict[str, str] = field(default_factory=dict)   # model -> dtype on its device
    notes: list[str] = field(default_factory=list)            # why a model is not where asked / on the CPU


# What each model takes on a GPU (weights + working memory), measured or from the model card; the CPU has room.
NEEDS = {"csm": 5 * GIB, "whisper": int(0.6 * GIB), "speaker_encoder": int(0.1 * GIB)}


def place(needs: list[Need], gpus: list[Gpu], pins: dict[str, str] | None = None,
          headroom: float = HEADROOM) -> Placement:
    out = Placement()
    free = {g.index: g.free_bytes for g in gpus}
    by_index = {g.index: g for g in gpus}
    pins = {k: str(v).strip().lower() for k, v in (pins or {}).items()}

    def fits(gpu: Gpu, need: Need) -> bool:
        return (gpu.total_bytes - free[gpu.index] + need.bytes) <= headroom * gpu.total_bytes

    def put(need: Need, gpu: Gpu | None) -> None:
        if gpu is None:
            out.device[need.model], out.precision[need.model] = "cpu", "int8" if need.model == "whisper" else "float32"
            return
        free[gpu.index] -= need.bytes
        out.device[need.model] = f"cuda:{gpu.index}"
        out.precision[need.model] = "float16" if need.model == "whisper" else gpu.precision

    for need in sorted(needs, key=lambda n: -n.bytes):      # the largest first: CSM gets the roomiest GPU
        pin = pins.get(need.model, "auto")
        if pin == "cpu":
            put(need, None)
            continue
        if pin not in ("", "auto"):
            gpu = by_index.get(int(pin)) if pin.isdigit() else None
            if gpu is not None and fits(gpu, need):
                put(need, gpu)
                continue
            out.notes.append(f"gpu.placement.{need.model} is {pin!r}, but " + (
                f"GPU {pin} has no room for it" if gpu is not None else f"there is no GPU {pin}") +
                "; placed where it fits")
        candidates = [g for g in gpus if fits(g, need)]
        if not candidates:
            if gpus:
                out.notes.append(f"{need.model} fits on no GPU ({need.bytes / GIB:.1f} GiB needed); it runs on the CPU")
            put(need, None)
            continue
        put(need, max(candidates, key=lambda g: (free[g.index], -g.index)))
    return out


class Placer:
    """Thread-safe placement for models loading in parallel: ``reserve`` picks a device and holds its memory
    until ``release`` (the model loaded, and the GPU's own figures now count it)."""

    def __init__(self, gpus: list[Gpu], pins: dict[str, str] | None = None, headroom: float = HEADROOM):
        self._gpus = {g.index: g for g in gpus}
        self._pins = pins or {}
        self._headroom = headroom
        self._reserved: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def reserve(self, need: Need) -> tuple[str, str, list[str]]:
        """(device, precision, notes) for ``need``, its memory held until ``release(need.model)``."""
        with self._lock:
            held: dict[int, int] = {}
            for device, size in self._reserved.values():
                if device.startswith("cuda:"):
                    held[int(device[5:])] = held.get(int(device[5:]), 0) + size
            gpus = [Gpu(g.index, g.name, g.total_bytes, g.free_bytes - held.get(g.index, 0), g.capability)
                    for g in self._gpus.values()]
            result = place([need], gpus, self._pins, self._headroom)
            device = result.device[need.model]
            self._reserved[need.model] = (device, need.bytes)
            return device, result.precision[need.model], result.notes

    def release(self, model: str) -> None:
        with self._lock:
            self._reserved.pop(model, None)


def gpus_here() -> list[Gpu]:
    """This machine's NVIDIA GPUs (NVML through ``jarvis.devices``; capability from torch when it has CUDA up)."""
    import sys

    from jarvis.devices import gpu_memory

    torch = sys.modules.get("torch")
    out = []
    for row in gpu_memory():
        capability = (8, 0)
        if torch is not None:
            try:
                capability = tuple(torch.cuda.get_device_capability(row["index"]))
            except Exception:  # noqa: BLE001 - no CUDA context yet: assume a current GPU
                pass
        total, used = row.get("total_bytes") or 0, row.get("used_bytes") or 0
        out.append(Gpu(int(row.get("index", len(out))), str(row.get("name", "GPU")), total, total - used, capability))
    return out


def plan(settings, gpus: list[Gpu]) -> Placement:
    """Where the assistant's models go with ``settings`` (a ``jarvis.config.Settings``) on these GPUs: CSM when it
    is in ``tts.engines`` and ``tts.csm.device`` is auto, Whisper when ``listen.stt_device`` is auto, the speaker
    encoder always; ``gpu.placement`` pins. A model whose device is set by hand is not placed (not in the result)."""
    needs = [Need("speaker_encoder", NEEDS["speaker_encoder"])]
    if "csm" in settings.tts.engines and settings.tts.csm.device.strip().lower() == "auto":
        needs.append(Need("csm", NEEDS["csm"]))
    if settings.listen.stt_device.strip().lower() == "auto":
        needs.append(Need("whisper", NEEDS["whisper"]))
    pins = {str(k).strip().lower(): str(v) for k, v in (settings.gpu.placement or {}).items()}
    return place(needs, gpus, pins)
