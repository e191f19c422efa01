"""Whisper in this process, shared with the speech server (``serve.enabled``): the voice loop's commands and the
API's transcriptions use one loaded model instead of RealtimeSTT's worker process holding a second copy, and the
loop's commands go ahead of API requests (``jarvis.serve.scheduler``). It is RealtimeSTT's
``transcription_executor``, as ``jarvis.listen.remote_stt`` is."""
from __future__ import annotations

import numpy as np


class SharedTranscription:
    def __init__(self, transcriber, scheduler, prompt: str = ""):
        self.transcriber = transcriber  # jarvis.listen.stt.Transcriber, the one the speech server uses
        self.scheduler = scheduler      # jarvis.serve.scheduler.Scheduler
        self.prompt = prompt

    def warmup(self) -> None:
        self.transcriber.load()
        self.transcribe(np.zeros(16000, np.float32))

    def transcribe(self, audio, language=None, use_prompt=True, **options):
        """RealtimeSTT calls this with the command's float32 16 kHz audio; returns its TranscriptionResult."""
        from RealtimeSTT.transcription_engines.base import TranscriptionResult

        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        with self.scheduler.live():
            text = self.transcriber.transcribe(samples, language=language,
                                               prompt=(self.prompt if use_prompt else "") or None, command=True)
        return TranscriptionResult(text=text)
