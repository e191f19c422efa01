"""The Whisper worker's pipe-polling thread: quiet when the pipe closes at shutdown, loud otherwise."""
import logging
import multiprocessing
import pickle
import queue
import threading

from jarvis.listen import stt_worker


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
