"""The voice loop's Whisper engine in RealtimeSTT's worker process: RealtimeSTT's faster-whisper engine, decoding
each command as ``jarvis.listen.stt.command_options`` says (no timestamps, no temperature retries), on a short window
first with ``listen.stt_short_window`` (``jarvis.listen.short_window``), which
RealtimeSTT 1.1.2 cannot be told to do. ``jarvis.listen.stt_worker`` registers it under ``ENGINE`` with RealtimeSTT's
engine factory, in the listener's process and in the worker process it spawns."""
from __future__ import annotations

from RealtimeSTT.transcription_engines.faster_whisper_engine import FasterWhisperEngine

from jarvis.listen.short_window import ShortWindowFirst
from jarvis.listen.stt import command_options

ENGINE = "jarvis_faster_whisper"
ENGINE_FULL_WINDOW = "jarvis_faster_whisper_full_window"


class CommandDecoding:
    """faster-whisper's ``WhisperModel`` as the engine calls it, with the command options added to each pass."""

    def __init__(self, whisper):
        self.whisper = whisper

    def transcribe(self, audio, **options):
        if not options.get("word_timestamps"):   # word timestamps need the timestamp tokens
            options.update(command_options(audio))
        return self.whisper.transcribe(audio, **options)

    def __getattr__(self, name):
        return getattr(self.whisper, name)


class CommandWhisperEngine(FasterWhisperEngine):
    engine_name = ENGINE
    short_window_first = True

    def __init__(self, config):
        super().__init__(config)
        if self.config.batch_size <= 0:   # batched decoding (not how Jarvis runs it) stays RealtimeSTT's own
            whisper = ShortWindowFirst(self.model) if self.short_window_first else self.model
            self.model = CommandDecoding(whisper)


class FullWindowCommandEngine(CommandWhisperEngine):
    """``listen.stt_short_window`` off: every command on Whisper's 30 s window."""
    engine_name = ENGINE_FULL_WINDOW
    short_window_first = False


def engine_for(short_window: bool) -> str:
    return ENGINE if short_window else ENGINE_FULL_WINDOW
