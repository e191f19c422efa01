"""A command's transcript the moment its last pause begins, before the turn is over.

RealtimeSTT transcribes a recording as soon as it falls silent (``early_transcription_on_silence``) and keeps that
result for when the recording ends (speech that goes on asks again at the next pause). ``EarlyTranscripts`` hands
each such transcript over as soon as Whisper has it, while the end of the turn is still being decided, so the reply
can be worked out meanwhile (``jarvis.loop.turns``). A result is reported only if the recording is still in the
pause it was asked in: a person who went on gets no reply prepared for half a sentence.

Whisper runs in RealtimeSTT's worker (a thread on Linux, a process elsewhere), its results come back on a pipe that
RealtimeSTT reads only once the recording has ended; here one thread reads that pipe as results arrive and keeps
them, in order, for RealtimeSTT. With a transcription executor (the speech server's Whisper, a remote server) the
executor is wrapped instead.

A ``provisional`` result (the worker put off its 30 s pass on a half command, ``jarvis.listen.short_window``) gives
the pause's words check its words but prepares no reply; if it is the answer RealtimeSTT takes for the recording
(none came after it), the pipe asks the worker for the 30 s pass then and hands that over instead.
"""
from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

Report = Callable[[str, "str | None", bool], None]   # (text, heard, provisional)
Asked = Callable[[float], None]


def pause_of(recorder) -> float:
    """The pause a transcription asked for now belongs to (RealtimeSTT's start of the silence), 0 for none."""
    return float(recorder.speech_end_silence_start or 0.0) if recorder.is_recording else 0.0


def words_of(answer) -> str:
    """The words of a transcription result (RealtimeSTT's ``TranscriptionResult``)."""
    return str(getattr(answer, "text", "") or "").strip()


def heard_of(answer) -> str | None:
    """The words the audio itself held (``jarvis.listen.heard``, from Jarvis's Whisper engine), None if not scored."""
    heard = (getattr(answer, "metadata", None) or {}).get("heard")
    return heard.strip() if isinstance(heard, str) else None


def provisional_of(answer) -> bool:
    """The worker put off this answer's 30 s pass: its text is the words heard of a half command."""
    return bool((getattr(answer, "metadata", None) or {}).get("provisional"))


def _answer(result):
    """The answer of a worker result (``(status, result)``), None for a failure."""
    status, answer = result if isinstance(result, tuple) and len(result) == 2 else ("error", None)
    return answer if status == "success" else None


def text_of(result) -> str:
    """The words of a worker result (``(status, result)``), "" for a failure."""
    answer = _answer(result)
    return words_of(answer) if answer is not None else ""


class _Answers:
    def __init__(self, recorder, report: Report, asked: Asked | None = None):
        self.recorder = recorder
        self.report = report
        self.asked = asked   # told the pause (``pause_of``) of each request as it goes to Whisper

    def _asking(self, pause: float) -> None:
        if self.asked is not None:
            try:
                self.asked(pause)
            except Exception:  # noqa: BLE001 - only tells the pause's other work it may start
                log.exception("reporting a Whisper request failed")

    def answered(self, pause: float, text: str, heard: str | None = None, provisional: bool = False) -> None:
        """A transcription asked in ``pause`` came back: report it (with the words the audio itself held, when
        scored) when the recording is still in that pause."""
        recorder = self.recorder
        if not pause or not text or not recorder.is_recording or recorder.speech_end_silence_start != pause:
            return
        try:
            self.report(text, heard, provisional)
        except Exception:  # noqa: BLE001 - preparing a reply is an extra: the turn goes on without it
            log.exception("handling an early transcript failed")


@dataclass(frozen=True)
class _Sent:
    pause: float          # ``pause_of`` when it was sent
    request: tuple        # (audio, language, use_prompt[, options]) as RealtimeSTT sends it
    own: bool = False     # the pipe's own request for a put-off 30 s pass


class ReadAheadPipe(_Answers):
    """Stands in for RealtimeSTT's parent transcription pipe: requests go through it as before; results are read
    by a thread of its own as they arrive, reported, and kept for RealtimeSTT's ``poll``/``recv``."""

    def __init__(self, pipe, recorder, report: Report, asked: Asked | None = None):
        super().__init__(recorder, report, asked)
        self._pipe = pipe                                  # RealtimeSTT's ParentPipe (its writes stay its own)
        self._connection = getattr(pipe, "_pipe", pipe)    # the multiprocessing end: read only here
        self._sent: collections.deque[_Sent] = collections.deque()   # requests not answered yet, oldest first
        self._results: collections.deque = collections.deque()       # (result, _Sent) for RealtimeSTT
        self._own: collections.deque = collections.deque()           # results of the pipe's own requests
        self._ready = threading.Condition()
        self._closed = threading.Event()
        self.full_passes = 0   # put-off 30 s passes asked for (tests, logs)
        self._reader = threading.Thread(target=self._read, name="stt-results", daemon=True)
        self._reader.start()

    def send(self, request) -> None:
        pause = pause_of(self.recorder)
        with self._ready:   # sent in the order the reader pairs the results with
            self._sent.append(_Sent(pause, tuple(request)))
            self._pipe.send(request)
        self._asking(pause)

    def poll(self, timeout: float = 0.0) -> bool:
        with self._ready:
            return bool(self._ready.wait_for(lambda: self._results or self._closed.is_set(), timeout=timeout)
                        and self._results)

    def recv(self):
        with self._ready:
            self._ready.wait_for(lambda: self._results or self._closed.is_set())
            if not self._results:
                return None
            result, sent = self._results.popleft()
            latest = not self._results and not self._sent
        if latest and provisional_of(_answer(result)):
            return self._full_pass(sent)   # RealtimeSTT takes this one for the recording: the 30 s pass is due
        return result

    def _full_pass(self, sent: _Sent):
        """The 30 s pass put off for ``sent``'s audio, asked now and waited for."""
        audio, language, use_prompt = sent.request[:3]
        options = dict(sent.request[3]) if len(sent.request) > 3 and sent.request[3] else {}
        options["full_window"] = True
        self.full_passes += 1
        with self._ready:
            self._sent.append(_Sent(0.0, (), own=True))
            self._pipe.send((audio, language, use_prompt, options))
            self._ready.wait_for(lambda: self._own or self._closed.is_set())
            return self._own.popleft() if self._own else None

    def close(self) -> None:
        self._closed.set()
        with self._ready:
            self._ready.notify_all()
        self._pipe.close()

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                if not self._connection.poll(0.1):
                    continue
                result = self._connection.recv()
            except (EOFError, OSError, ValueError):   # the worker process ended or the pipe was closed
                break
            with self._ready:
                sent = self._sent.popleft() if self._sent else _Sent(0.0, ())
                if sent.own:
                    self._own.append(result)
                else:
                    self._results.append((result, sent))
                self._ready.notify_all()
            if not sent.own:
                answer = _answer(result)
                self.answered(sent.pause, text_of(result), heard_of(answer), provisional_of(answer))
        self._closed.set()
        with self._ready:
            self._ready.notify_all()


class ReportingExecutor(_Answers):
    """Wraps a transcription executor (``transcribe(audio, language=, use_prompt=, **options)``)."""

    def __init__(self, executor, recorder, report: Report, asked: Asked | None = None):
        super().__init__(recorder, report, asked)
        self.wrapped = executor

    def transcribe(self, audio, language=None, use_prompt=True, **options):
        pause = pause_of(self.recorder)   # RealtimeSTT calls it on a thread it starts as the request is made
        self._asking(pause)
        result = self.wrapped.transcribe(audio, language=language, use_prompt=use_prompt, **options)
        self.answered(pause, words_of(result), heard_of(result), provisional_of(result))
        return result

    def __getattr__(self, name):
        return getattr(self.wrapped, name)


def install(recorder, report: Report, asked: Asked | None = None) -> None:
    """Report ``recorder``'s early transcripts (raw Whisper text, the words the audio itself held or None, and
    whether the text is provisional) to ``report``, on the thread that read them, and the pause of each request to
    ``asked`` as it goes to Whisper."""
    if getattr(recorder, "_uses_external_transcription_executor", False):
        recorder.transcription_executor = ReportingExecutor(recorder.transcription_executor, recorder, report, asked)
    elif getattr(recorder, "parent_transcription_pipe", None) is not None:
        recorder.parent_transcription_pipe = ReadAheadPipe(recorder.parent_transcription_pipe, recorder, report,
                                                           asked)
