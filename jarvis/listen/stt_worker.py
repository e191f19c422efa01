"""RealtimeSTT's Whisper worker (a thread on Linux, a process elsewhere), minus one shutdown race in RealtimeSTT
1.1.2 and its polling sleep, with Jarvis's engine; and its recording loop without its 10 ms wake-ups
(``wait_for_chunks``).

On shutdown the worker closes its pipe while its polling thread may still be inside ``poll()``; the
thread then logs "Error receiving data from connection" with an ``OSError: handle is closed``
traceback on every Ctrl-C. This subclass ends the polling thread quietly in exactly that case and
keeps every other error as loud as before. It also waits on the pipe itself: RealtimeSTT polls it for 10 ms then
sleeps 20, so a command's request waited up to 20 ms before Whisper began (1-26 ms after the pause began in a
2026-12-06 trace of the pipeline bench). ``install()`` points RealtimeSTT at it; spawn pickles the
target by name, so the child process imports this module and runs the subclass. Importing it also registers
``jarvis.listen.command_engine`` with RealtimeSTT's engine factory (in the child too, where the engine is made).
"""
from __future__ import annotations

import logging
import queue
import time

from RealtimeSTT.core import initialization, transcription
from RealtimeSTT.transcription_engines import factory

from jarvis.listen.command_engine import ENGINE, ENGINE_FULL_WINDOW

factory.ENGINE_CLASS_PATHS[ENGINE] = ("jarvis.listen.command_engine", "CommandWhisperEngine")
factory.ENGINE_CLASS_PATHS[ENGINE_FULL_WINDOW] = ("jarvis.listen.command_engine", "FullWindowCommandEngine")


POLL_S = 0.1   # a request is taken the moment it arrives; shutdown is noticed within this


class QuietShutdownWorker(transcription.TranscriptionWorker):
    def poll_connection(self):
        while not self.shutdown_event.is_set():
            try:
                if self.conn.poll(POLL_S):
                    self.queue.put(self.conn.recv())
            except Exception as exc:
                if isinstance(exc, (OSError, EOFError)) and (self.shutdown_event.is_set() or self.conn.closed):
                    return  # the worker is closing its end of the pipe: nothing left to read
                logging.error("Error receiving data from connection: %s", exc, exc_info=True)
                time.sleep(transcription.TIME_SLEEP)


def run_transcription_worker(*args, **kwargs) -> None:
    QuietShutdownWorker(*args, **kwargs).run()


def install() -> None:
    initialization.run_transcription_worker = run_transcription_worker


RECORDING_LOOP_WAIT_S = 0.1


class _ChunkQueue(queue.Queue):
    """RealtimeSTT's recording loop asks for the next audio chunk with a 10 ms timeout and, when none came, only
    checks that it is still running: ~100 wake-ups a second between the 32 ms chunks (1.5 % of a core while
    listening, 2026-12-06). A timed wait here lasts at least ``RECORDING_LOOP_WAIT_S``; it still returns the moment
    a chunk is put, so only noticing a stop can take that long."""

    def get(self, block=True, timeout=None):
        if block and timeout is not None and timeout < RECORDING_LOOP_WAIT_S:
            timeout = RECORDING_LOOP_WAIT_S
        return super().get(block, timeout)


def wait_for_chunks(recorder) -> None:
    """Give a recorder fed by ``feed_audio`` (its in-process chunk queue) the queue above, before anything is fed."""
    chunks = getattr(recorder, "audio_queue", None)
    if type(chunks) is not queue.Queue:   # a microphone RealtimeSTT opens itself feeds a multiprocessing queue
        return
    waiting = _ChunkQueue()
    while True:
        try:
            waiting.put(chunks.get_nowait())
        except queue.Empty:
            break
    recorder.audio_queue = waiting
