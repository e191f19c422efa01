"""Finding, placing and loading CSM: model folder or Hugging Face id, device, precision."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from jarvis.errors import BadInput, NotAvailable, describe

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
          "half": "float16", "float32": "float32", "fp32": "float32"}


def choose_device(setting: str) -> str:
    """``auto`` = CUDA, then MPS, then CPU; an explicit choice must be available here."""
    import torch

    from jarvis.devices import best_device

    choice = (setting or "auto").strip().lower()
    if choice == "auto":
        return best_device()
    if choice == "cpu":
        return "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise NotAvailable("csm_device", f"tts.csm.device is '{setting}' but CUDA is not available here: "
                                             f"set it to auto or cpu.")
        index = int(choice.split(":", 1)[1]) if ":" in choice and choice.split(":", 1)[1].isdigit() else 0
        if index >= torch.cuda.device_count():
            raise NotAvailable("csm_device", f"tts.csm.device is '{setting}' but this machine has "
                                             f"{torch.cuda.device_count()} CUDA device(s).")
        return f"cuda:{index}"
    if choice == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise NotAvailable("csm_device", "tts.csm.device is 'mps' but Apple MPS is not available here: "
                                             "set it to auto or cpu.")
        return "mps"
    raise BadInput("bad_setting", f"tts.csm.device '{setting}' is not one of auto, cuda, cuda:N, mps, cpu.")


def choose_dtype(device: str, setting: str):
    """``auto`` = bf16 on GPUs that support it, else fp16; fp16 on MPS; fp32 on CPU."""
    import torch

    choice = (setting or "auto").strip().lower()
    if choice != "auto":
        if choice not in DTYPES:
            raise BadInput("bad_setting", f"tts.csm.dtype '{setting}' is not one of auto, bfloat16, float16, float32.")
        return getattr(torch, DTYPES[choice])
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def _looks_like_folder(model: str) -> bool:
    return model.startswith((".", "/", "~")) or "\\" in model or Path(model).expanduser().exists() \
        or model.count("/") != 1


def resolve_model(model: str, allow_download: bool = False,
                  progress: Callable[[str], None] | None = None) -> Path:
    """A folder with the model's files: the folder itself, or the HF cache's snapshot of an id."""
    model = (model or "").strip()
    if not model:
        raise BadInput("bad_setting", "tts.csm.model is empty: set a Hugging Face id (sesame/csm-1b) or a folder.")
    if _looks_like_folder(model):
        folder = Path(model).expanduser()
        if not (folder / "config.json").is_file():
            raise NotAvailable("csm_missing", f"CSM model folder {folder} not found or has no config.json: "
                                              f"set tts.csm.model to a downloaded CSM folder or to sesame/csm-1b.")
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except LocalEntryNotFoundError:
        if not allow_download:
            raise NotAvailable("csm_not_downloaded",
                               f"CSM weights ({model}, ~4.5 GB) are not downloaded: allow it with "
                               f"`jarvis say --engine csm --download \"Hello\"` or tts.csm.allow_download, "
                               f"or set tts.csm.model to a local folder.") from None
    except Exception as exc:  # corrupt cache entries and the like
        raise NotAvailable("csm_missing", f"CSM weights for {model} could not be read from the Hugging Face "
                                          f"cache ({type(exc).__name__}: {exc}).") from exc
    return _download(model, progress)


def _download(model: str, progress: Callable[[str], None] | None) -> Path:
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    report = progress or (lambda line: log.info("%s", line))

    class Progress(tqdm):  # every file's progress bar also goes to the model host's progress report
        def update(self, n=1):
            result = super().update(n)
            if self.total:
                report(f"downloading {model}: {self.desc or ''} {100 * self.n / self.total:.0f}%".replace("  ", " "))
            return result

    report(f"downloading {model} from the Hugging Face hub")
    try:
        return Path(snapshot_download(model, tqdm_class=Progress))
    except Exception as exc:
        hint = ("accept the model's terms on huggingface.co and log in with `hf auth login`"
                if "401" in str(exc) or "403" in str(exc) or "gated" in str(exc).lower()
                else "check the internet connection")
        raise NotAvailable("csm_download_failed", f"Downloading {model} failed ({type(exc).__name__}): {hint}.") \
            from exc


def load_model(folder: Path, device: str, dtype):
    """``(model, processor)`` on ``device`` in eval mode; GPU name and memory go to the log."""
    import torch
    from transformers import AutoProcessor, CsmForConditionalGeneration

    _log_device(device)
    try:
        processor = AutoProcessor.from_pretrained(folder)
        model = CsmForConditionalGeneration.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise NotAvailable("csm_corrupt", f"CSM model in {folder} could not be loaded "
                                          f"({describe(exc)}).") from exc
    try:
        model = model.to(device).eval()
    except torch.OutOfMemoryError as exc:
        del model
        _free(device)
        raise NotAvailable("csm_oom", f"Not enough GPU memory to load CSM on {device} ({_memory_line(device)}): "
                                      f"close other GPU programs or set tts.csm.device to cpu.") from exc
    _log_device(device, after_load=True)
    return model, processor


def _free(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _memory_line(device: str) -> str:
    import torch

    if not device.startswith("cuda"):
        return device
    free, total = torch.cuda.mem_get_info(torch.device(device))
    return f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"


def _log_device(device: str, after_load: bool = False) -> None:
    import torch

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
        log.info("CSM %s %s: %s", "loaded on" if after_load else "loading on", name, _memory_line(device))
    else:
        log.info("CSM %s %s", "loaded on" if after_load else "loading on", device)
