"""The Whisper worker's pipe-polling thread: quiet when the pipe closes at shutdown, loud otherwise."""
import logging
import multiprocessing
import pickle
import queue
import threading

import numpy as np
import pytest
import soundfile

from jarvis.listen import stt_worker
from tests.speech import espeak_wav


def _worker(conn, shutdown):
    # Only the three attributes poll_connection uses; the full worker would load a Whisper model.
    worker = object.__new__(stt_worker.QuietShutdownWorker)
    worker.conn, worker.shutdown_event, worker.queue = conn, shutdown, queue.Queue()
    return worker


def _poll_in_thread(worker):
    thread = threading.Thread(target=worker.poll_connection, daemon=True)
    thread.start()
    return thread


def test_messages_reach_the_worker_queue():
    parent, child = multiprocessing.Pipe()
    shutdown = threading.Event()
    worker = _worker(child, shutdown)
    thread = _poll_in_thread(worker)
    parent.send(("audio", "en", True))
    assert worker.queue.get(timeout=2) == ("audio", "en", True)
    shutdown.set()
    thread.join(2)
    assert not thread.is_alive()


def test_the_worker_waits_on_the_pipe_instead_of_sleeping(monkeypatch):
    """A request is taken the moment it arrives: RealtimeSTT's own loop slept 20 ms after each 10 ms poll, and a
    command's request could wait that long before Whisper began."""
    shutdown = threading.Event()

    class IdlePipe:
        closed = False
        timeouts: list[float] = []

        def poll(self, timeout):
            self.timeouts.append(timeout)
            if len(self.timeouts) == 3:
                shutdown.set()
            return False

    sleeps = []
    monkeypatch.setattr(stt_worker.time, "sleep", sleeps.append)
    pipe = IdlePipe()
    _worker(pipe, shutdown).poll_connection()
    assert pipe.timeouts == [stt_worker.POLL_S] * 3
    assert not sleeps


def test_pipe_closed_during_shutdown_ends_polling_without_a_traceback(caplog):
    parent, child = multiprocessing.Pipe()
    shutdown = threading.Event()
    worker = _worker(child, shutdown)
    with caplog.at_level(logging.DEBUG):
        thread = _poll_in_thread(worker)
        child.close()  # what the worker's shutdown does while the thread may be mid-poll
        thread.join(2)
    assert not thread.is_alive()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_other_errors_are_still_logged(caplog):
    class BrokenConn:
        closed = False

        def poll(self, timeout):
            raise ValueError("corrupt message")

    shutdown = threading.Event()
    worker = _worker(BrokenConn(), shutdown)
    with caplog.at_level(logging.ERROR):
        thread = _poll_in_thread(worker)
        deadline = threading.Event()
        deadline.wait(0.2)
        shutdown.set()
        thread.join(2)
    assert any("corrupt message" in r.getMessage() for r in caplog.records)


def test_install_points_realtimestt_at_a_picklable_worker():
    from RealtimeSTT.core import initialization

    stt_worker.install()
    assert initialization.run_transcription_worker is stt_worker.run_transcription_worker
    # spawn pickles the process target by qualified name
    assert pickle.loads(pickle.dumps(initialization.run_transcription_worker)) is stt_worker.run_transcription_worker


# -- Jarvis's engine: how a command is decoded ------------------------------------------------------------------------
def _recording_calls(model):
    """Keep what the real faster-whisper model is asked, and let it answer."""
    calls = []
    transcribe = model.transcribe

    def recorded(audio, **options):
        calls.append(options)
        return transcribe(audio, **options)

    model.transcribe = recorded
    return calls


@pytest.mark.slow
def test_the_worker_makes_jarvis_engine_which_decodes_a_command_without_timestamps_or_retries(tmp_path):
    from RealtimeSTT.transcription_engines.base import TranscriptionEngineConfig
    from RealtimeSTT.transcription_engines.factory import create_transcription_engine

    from jarvis.listen.command_engine import ENGINE, CommandWhisperEngine
    from jarvis.listen.stt import resolve_model
    from jarvis.listen.vocabulary import whisper_prompt

    # The name the listener gives RealtimeSTT is known to its factory once this module is imported (the worker
    # process imports it to run its target).
    engine = create_transcription_engine(ENGINE, TranscriptionEngineConfig(
        model=resolve_model("tiny.en"), device="cpu", compute_type="int8", beam_size=1,
        initial_prompt=whisper_prompt("jarvis"), vad_filter=False))
    assert isinstance(engine, CommandWhisperEngine)
    calls = _recording_calls(engine.model.whisper)
    audio, _ = soundfile.read(espeak_wav("Jarvis, what time is it?", tmp_path / "c.wav", voice="en-us+m3",
                                         pad_s=0.3), dtype="float32")
    result = engine.transcribe(audio, language="en")
    assert "time" in result.text.lower() and result.info.language == "en"
    assert calls[-1]["without_timestamps"] is True and calls[-1]["temperature"] == 0.0
    assert calls[-1]["initial_prompt"] == whisper_prompt("jarvis")
    # Longer than Whisper's window: faster-whisper's defaults, whose timestamps find where the next window starts.
    engine.transcribe(np.zeros(31 * 16000, np.float32), language="en")
    assert "without_timestamps" not in calls[-1] and "temperature" not in calls[-1]


@pytest.mark.slow
def test_the_in_process_whisper_decodes_commands_as_the_worker_and_files_as_before(tmp_path):
    from jarvis.config import ListenSettings
    from jarvis.listen.stt import Transcriber
    from jarvis.listen.vocabulary import whisper_prompt

    transcriber = Transcriber(ListenSettings())
    transcriber.load()
    calls = _recording_calls(transcriber._model)
    audio, _ = soundfile.read(espeak_wav("Jarvis, what time is it?", tmp_path / "c.wav", voice="en-us+m3",
                                         pad_s=0.3), dtype="float32")
    assert "time" in transcriber.transcribe(audio, prompt=whisper_prompt("jarvis"), command=True).lower()
    assert calls[-1]["without_timestamps"] is True and calls[-1]["temperature"] == 0.0
    assert "time" in transcriber.transcribe(audio).lower()     # the speech server's files: faster-whisper's way
    assert "without_timestamps" not in calls[-1]


def test_whisper_never_runs_more_threads_than_the_cores_it_may_use():
    """CTranslate2's default is 4 threads: on 2 cores a command's 30 s pass took 573 ms against 430 ms with 2
    (benchmarks/whisper_threads.py); the worker's engine and the in-process Whisper ask for at most the cores."""
    import os

    from jarvis.listen.stt import cpu_threads

    assert 1 <= cpu_threads() <= min(4, len(os.sched_getaffinity(0)))


def test_the_recording_loop_waits_for_the_next_chunk_instead_of_waking_every_10_ms():
    """RealtimeSTT's recording loop asks its chunk queue with a 10 ms timeout: with ``wait_for_chunks`` an empty
    queue keeps it waiting ``RECORDING_LOOP_WAIT_S``, a chunk put meanwhile is taken at once, chunks already queued
    keep their order, and a multiprocessing queue (RealtimeSTT's own microphone) is left as it is."""
    import time
    from types import SimpleNamespace

    recorder = SimpleNamespace(audio_queue=queue.Queue())
    recorder.audio_queue.put(b"first")
    recorder.audio_queue.put(b"second")
    stt_worker.wait_for_chunks(recorder)
    chunks = recorder.audio_queue
    assert [chunks.get(timeout=0.01), chunks.get(timeout=0.01)] == [b"first", b"second"]
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        chunks.get(timeout=0.01)
    assert time.monotonic() - started >= stt_worker.RECORDING_LOOP_WAIT_S * 0.9
    threading.Timer(0.02, chunks.put, args=(b"third",)).start()
    started = time.monotonic()
    assert chunks.get(timeout=0.01) == b"third" and time.monotonic() - started < stt_worker.RECORDING_LOOP_WAIT_S
    assert chunks.qsize() == 0
    own = SimpleNamespace(audio_queue=multiprocessing.Queue())
    before = own.audio_queue
    stt_worker.wait_for_chunks(own)
    assert own.audio_queue is before
