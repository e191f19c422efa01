"""The voice loop's Whisper engine in RealtimeSTT's worker (a thread of the listener's process on Linux, a process it
spawns elsewhere): RealtimeSTT's faster-whisper engine, decoding
each command as ``jarvis.listen.stt.command_options`` says (no timestamps, no temperature retries), on a short window
first with ``listen.stt_short_window`` (``jarvis.listen.short_window``), with at most as many threads as cores
(``jarvis.listen.stt.cpu_threads``), which
RealtimeSTT 1.1.2 cannot be told to do. ``jarvis.listen.stt_worker`` registers it under ``ENGINE`` with RealtimeSTT's
engine factory, in the listener's process and in a worker process it spawns."""
from __future__ import annotations

from RealtimeSTT.transcription_engines.base import BaseTranscriptionEngine
from RealtimeSTT.transcription_engines.faster_whisper_engine import FasterWhisperEngine

from jarvis import cuda_libs
from jarvis.listen.short_window import ShortWindowFirst, one_thread_decoder
from jarvis.listen.stt import command_options, cpu_threads

ENGINE = "jarvis_faster_whisper"
ENGINE_FULL_WINDOW = "jarvis_faster_whisper_full_window"


class CommandDecoding:
    """faster-whisper's ``WhisperModel`` as the engine calls it, with the command options added to each pass.
    ``heard``: the words the audio itself held in the last pass (``jarvis.listen.heard``), None when not scored (the
    30 s window alone, ``listen.stt_short_window`` off); ``provisional``: its 30 s pass was put off
    (``ShortWindowFirst.defer_half_commands``). ``full_window`` set: the next pass is the 30 s one alone."""

    def __init__(self, whisper):
        self.whisper = whisper
        self.heard: str | None = None
        self.provisional = False
        self.full_window = False

    def transcribe(self, audio, **options):
        if not options.get("word_timestamps"):   # word timestamps need the timestamp tokens
            options.update(command_options(audio))
        if self.full_window and isinstance(self.whisper, ShortWindowFirst):
            options["full_window"] = True
        segments, info = self.whisper.transcribe(audio, **options)
        segments = list(segments)
        scored = [s.heard for s in segments if getattr(s, "heard", None) is not None]
        self.heard = " ".join(scored).strip() if segments and len(scored) == len(segments) else None
        self.provisional = any(getattr(s, "provisional", False) for s in segments)
        return segments, info

    def __getattr__(self, name):
        return getattr(self.whisper, name)


class CommandWhisperEngine(FasterWhisperEngine):
    engine_name = ENGINE
    short_window_first = True

    def __init__(self, config):
        # RealtimeSTT's engine loads the model with CTranslate2's 4 threads, too many on 2 cores: loaded here instead.
        BaseTranscriptionEngine.__init__(self, config)
        import faster_whisper

        cuda_libs.preload_for(config.device)   # Whisper on a GPU finds cuBLAS 12 (in the worker process too)
        threads = cpu_threads()
        model = faster_whisper.WhisperModel(model_size_or_path=config.model, device=config.device,
                                            compute_type=config.compute_type, device_index=config.gpu_device_index,
                                            download_root=config.download_root, cpu_threads=threads)
        if config.batch_size > 0:   # batched decoding (not how Jarvis runs it) stays RealtimeSTT's own
            self.model = faster_whisper.BatchedInferencePipeline(model=model)
            return
        if not self.short_window_first:
            self.model = CommandDecoding(model)
            return
        decoder = one_thread_decoder(config.model, config.device, config.compute_type, threads, config.download_root)
        self.model = CommandDecoding(ShortWindowFirst(model, defer_half_commands=True, decoder=decoder))

    def transcribe(self, audio, language=None, use_prompt=True, word_timestamps=False, full_window=False):
        """RealtimeSTT's result, with the words the audio itself held in ``metadata["heard"]`` when scored and
        ``metadata["provisional"]`` when the 30 s pass was put off; ``full_window``: that pass alone (the request's
        options, sent by ``jarvis.listen.early_transcript.ReadAheadPipe``)."""
        decoding = self.model
        if not isinstance(decoding, CommandDecoding):   # batched decoding: RealtimeSTT's own
            return super().transcribe(audio, language=language, use_prompt=use_prompt,
                                      word_timestamps=word_timestamps)
        decoding.full_window = full_window
        try:
            result = super().transcribe(audio, language=language, use_prompt=use_prompt,
                                        word_timestamps=word_timestamps)
        finally:
            decoding.full_window = False
        if decoding.heard is not None:
            result.metadata["heard"] = decoding.heard
        if decoding.provisional:
            result.metadata["provisional"] = True
        return result


class FullWindowCommandEngine(CommandWhisperEngine):
    """``listen.stt_short_window`` off: every command on Whisper's 30 s window."""
    engine_name = ENGINE_FULL_WINDOW
    short_window_first = False


def engine_for(short_window: bool) -> str:
    return ENGINE if short_window else ENGINE_FULL_WINDOW
