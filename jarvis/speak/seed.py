"""The same audio every time (``jarvis say --seed``): the voices sample noise as they speak (Piper's graph from
onnxruntime's generator, CSM from torch's), so each take of a sentence differs a little, now and then enough for
speech-to-text to hear another word ("kettle" → "cattle"). onnxruntime seeds each session from its global seed as
the session is made, so this runs before the engines load."""
from __future__ import annotations

from jarvis.errors import BadInput

MAX_SEED = 2**31 - 1


def seed_voices(seed: int, torch_too: bool) -> None:
    """Seed onnxruntime's generator, and torch's when ``torch_too`` (a CSM engine may load)."""
    if not 0 <= seed <= MAX_SEED:
        raise BadInput("bad_args", f"--seed must be a whole number from 0 to {MAX_SEED} (got {seed}), e.g. --seed 1.")
    import onnxruntime

    onnxruntime.set_seed(seed)
    if torch_too:
        import torch

        torch.manual_seed(seed)
