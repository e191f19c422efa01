"""numpy's BLAS on one thread, in the assistant's process and in the worker processes it starts.

numpy's OpenBLAS starts a thread per core and keeps them spinning a while after each call. The voice loop's matrix
products are small (the end-of-turn model's features, speaker ID's numpy LSTM, Whisper's features) and come at a
command's pause, while Whisper decodes it: on 2 cores the spinning threads took the core Whisper needed.
``benchmarks/pause_work.py`` (AMD EPYC, 2 cores, 2026-12-06; ``pause-work-cpu.json``), Whisper in a thread of the
same process as RealtimeSTT runs it on Linux: with OpenBLAS's default of 2 threads Whisper's words came back 213 ms
after the request and Piper's first audio of the reply was ready at 299 ms (P50); with one thread, 163 and 237 ms.
With Whisper in a process of its own (RealtimeSTT elsewhere; an earlier version of the script): 210/297 against
147/231. The products are too small to gain from more threads anywhere. The variable is set for OpenBLAS to read as
numpy loads: limited later, through threadpoolctl, OpenBLAS reports one thread but the pause work was nearly as slow
as unlimited (288 against 300 ms, in an earlier version of the script that did that).
"""
from __future__ import annotations

import os
import sys

THREADS = 1
VARIABLE = "OPENBLAS_NUM_THREADS"   # read by OpenBLAS when numpy loads it; worker processes inherit it


def limit_threads(threads: int = THREADS) -> bool:
    """BLAS on ``threads`` threads from now on (call it before numpy loads); False, changing nothing, when the
    environment already says how many (the user's choice)."""
    if VARIABLE in os.environ:
        return False
    os.environ[VARIABLE] = str(threads)
    if "numpy" in sys.modules:   # loaded already (a program that embeds Jarvis): told directly, the best left
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return True   # the worker processes still start with one
        threadpool_limits(threads, user_api="blas")
    return True
