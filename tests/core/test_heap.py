"""Free memory handed back to the system once a turn is over (jarvis.heap): glibc's real malloc_trim on a heap
that frees leave full of holes, and the voice loop asking for it only between turns."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from jarvis import heap


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@pytest.mark.skipif(heap._TRIM is None, reason="no malloc_trim in this C library (not glibc)")
def test_trim_gives_back_the_pages_freed_inside_the_heap():
    """60 MB of 4 KB blocks (each from malloc's heap, below its mmap threshold), every tenth kept: the holes stay
    resident until the trim hands their pages back."""
    blocks = [bytearray(4000) for _ in range(15000)]
    for block in blocks:
        block[::1024] = b"x" * len(block[::1024])   # touch every page
    kept = blocks[::10]
    del blocks
    before = _rss_mb()
    assert heap.trim()
    after = _rss_mb()
    assert before - after > 25, (before, after)
    assert len(kept) == 1500


def test_release_frees_what_a_reference_cycle_held_which_the_trim_alone_cannot():
    """A cycle holding 40 MB (as each LLM answer's ctypes types held its buffers) stays resident, trim or not,
    until the cycle collector runs; Python's own collector runs a full collection rarely (disabled here so it
    cannot run first)."""
    import gc

    class Holder:
        pass

    gc.disable()
    try:
        holder = Holder()
        holder.itself, holder.buffer = holder, bytearray(40 << 20)
        holder.buffer[::4096] = b"x" * len(holder.buffer[::4096])   # touch every page
        del holder
        heap.trim()                                   # what earlier tests left free goes first
        before = _rss_mb()
        heap.trim()
        assert before - _rss_mb() < 5                 # the cycle still holds it
        heap.release()
        assert before - _rss_mb() > 30, (before, _rss_mb())
    finally:
        gc.enable()


def test_the_voice_loop_releases_with_the_cycle_collector_first():
    assert heap.TrimWhenIdle()._trim is heap.release


def test_it_trims_once_idle_after_a_turn_and_never_while_one_goes_on():
    trimmed = threading.Event()
    idle = heap.TrimWhenIdle(delay_s=0.2, trim=lambda: trimmed.set() or True)
    idle.turn_over()
    idle.turn_started()            # a new turn within the delay: not now
    time.sleep(0.4)
    assert not trimmed.is_set() and idle.trims == 0
    idle.turn_over()
    assert trimmed.wait(2)
    deadline = time.monotonic() + 2
    while idle.trims == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert idle.trims == 1
    idle.close()


def test_a_failing_trim_is_logged_and_changes_nothing(caplog):
    def broken():
        raise OSError("no")
    idle = heap.TrimWhenIdle(delay_s=0.0, trim=broken)
    idle._run()
    assert idle.trims == 0 and "giving free memory back" in caplog.text


def test_the_voice_loop_asks_for_it_when_a_turn_is_over():
    from jarvis import events
    from jarvis.config import Settings
    from jarvis.pipeline import VoiceLoop

    bus = events.EventBus()
    loop = VoiceLoop(Settings(), bus)
    asked = []
    loop.heap = heap.TrimWhenIdle(delay_s=0.05, trim=lambda: asked.append(time.monotonic()) or True)
    bus.emit(events.Wake(turn=7))
    time.sleep(0.2)
    assert asked == []             # heard and answered first
    bus.emit(events.PlaybackEnd(turn=7))
    deadline = time.monotonic() + 2
    while not asked and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(asked) == 1


_ARENAS_SCRIPT = r"""
import ctypes, sys, tempfile, threading
from jarvis import heap
if sys.argv[1] == "limited":
    assert heap.tune_allocator(2)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
together = threading.Barrier(8)

def allocate():
    block = libc.malloc(100_000)   # in this thread's arena
    together.wait()                # all eight hold theirs at once
    libc.free(block)

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(out.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(heap._TRIM is None, reason="no mallopt arenas in this C library (not glibc)")
def test_threads_share_two_allocator_arenas_once_limited():
    """glibc gives each new thread an arena of its own (up to 8 per core), and each keeps the free memory of its
    thread's largest turn. Counted by glibc itself (``malloc_info``), in a fresh process: arenas made before the
    limit stay."""
    import subprocess
    import sys

    def arenas(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _ARENAS_SCRIPT, mode], capture_output=True, text=True,
                             check=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
        return int(out.stdout.strip())

    assert arenas("limited") <= 2
    assert arenas("default") >= 8   # the script does make threads that would each take one


_THRESHOLD_SCRIPT = r"""
import ctypes, sys
from jarvis import heap
if sys.argv[1] == "tuned":
    assert heap.tune_allocator()
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes, libc.mallinfo2.restype = [ctypes.c_void_p], Info
libc.free(libc.malloc(20 << 20))   # a 20 MB block freed: glibc's default threshold rises to its size
before = libc.mallinfo2().hblks
blocks = [libc.malloc(8 << 20) for _ in range(3)]   # states-sized blocks after it
print(libc.mallinfo2().hblks - before)   # how many of them glibc mapped on their own
"""


@pytest.mark.skipif(heap._TRIM is None, reason="no mallopt in this C library (not glibc)")
def test_large_blocks_keep_mappings_of_their_own_after_a_larger_one_was_freed():
    """By default glibc's mmap threshold follows the largest block freed (up to 32 MB): llama.cpp's 2-9 MB states
    were then cut from the arenas and left holes there. Counted by glibc itself, in fresh processes."""
    import subprocess
    import sys

    def mapped(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _THRESHOLD_SCRIPT, mode], capture_output=True, text=True,
                             check=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
        return int(out.stdout.strip())

    assert mapped("tuned") == 3
    assert mapped("default") == 0     # the script does show what the fixed threshold changes


def test_what_was_loaded_is_kept_out_of_the_collectors_walk_until_the_models_are_let_go():
    import gc

    class Model:
        pass

    try:
        loaded = Model()
        loaded.itself = loaded
        heap.settle_loaded()
        assert gc.get_freeze_count() > 1000              # this process's modules, the test's objects, ``loaded``
        later = Model()
        later.itself = later
        del later
        assert gc.collect() >= 1                         # cycles made afterwards are still freed
        heap.unsettle()
        assert gc.get_freeze_count() == 0
        del loaded
        assert gc.collect() >= 1                         # and so is what was loaded, once let go
    finally:
        gc.unfreeze()
