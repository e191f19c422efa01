"""A spoken command decoded on a 10 s Whisper window first, on the full 30 s window only when that pass is unsure
(``listen.stt_short_window``: on in the low-latency preset).

faster-whisper pads every clip to Whisper's 30 s window, so on 2 CPU cores tiny.en's encoder spends ~0.3 s on a
2 s command whatever its length; CTranslate2 also encodes a shorter window, in a time that follows the window. On
its own a 10 s window loses words (tiny.en was trained on 30 s windows, benchmarks/whisper_window.py), so its pass
is kept only when it is sure of itself: it ended before its token cap (a pass that repeats itself runs into it),
it heard words, and their average log-probability is above ``MIN_AVG_LOGPROB``. Otherwise the usual 30 s pass
runs after it. ``benchmarks/whisper_cascade.py`` measures what that costs in accuracy and saves in time: a
trade, hence a setting and not the default.

In the voice loop's Whisper worker (``defer_half_commands``) an unsure pass whose words the audio holds ask for more
("Jarvis, what day…": Whisper loops on such half commands) is not followed by the 30 s pass at once: the person
almost always goes on, and that pass (~0.45 s on 2 cores) held up the request of the pause that ended the command
(a 1.5 s transcript in the pipeline bench). The result is marked ``provisional`` (its text: the words heard); the
30 s pass runs if the recording ends in that pause after all (``full_window``, ``jarvis.listen.early_transcript``).

On a CPU with more than one of Whisper's threads the pass is encoded on them all and decoded and scored by a copy of
the model on one thread (``one_thread_decoder``, +46 MB for tiny.en): the encoder's large products gain from the
threads, the decoder's small steps do not (92 ms on 2 threads, 77 on one, benchmarks/whisper_parts.py), and at a
pause the other core is left to the end-of-turn model, speaker ID and the capture thread
(benchmarks/pause_work.py --compare one-thread-decoder).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from jarvis.listen.heard import heard
from jarvis.listen.turn_end import sounds_unfinished

log = logging.getLogger(__name__)

RATE = 16000
WINDOW_S = 10
MARGIN_S = 1.0            # the command must end a second before the window does
MIN_AVG_LOGPROB = -0.5    # benchmarks/whisper_cascade.py: higher keeps fewer passes, lower loses more words
# A command says ~3-4 tokens a second; a pass that runs past this cap is repeating itself (unsure, and slow).
TOKENS_PER_S, TOKENS_MIN = 5, 12


def fits(samples: np.ndarray) -> bool:
    """The audio ends at least ``MARGIN_S`` before the short window does."""
    return 0 < samples.size <= (WINDOW_S - MARGIN_S) * RATE


def sure(text: str, avg_logprob: float, complete: bool, threshold: float = MIN_AVG_LOGPROB) -> bool:
    """A short pass worth keeping: it ended before its token cap, heard words, and was confident enough."""
    return complete and bool(text) and avg_logprob > threshold


class EncoderWatch:
    """When this process's latest short pass began and finished encoding (``time.monotonic``). At a pause the
    end-of-turn model and speaker ID wait for the encoder (``jarvis.listen.listener``): its products use every core,
    and once it is done the one-thread decoder leaves the other core to them. A Whisper worker in a process of its
    own (RealtimeSTT on macOS and Windows) never reports here."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._began = self._done = 0.0

    def began(self) -> None:
        with self._changed:
            self._began, self._done = time.monotonic(), 0.0

    def done(self) -> None:
        with self._changed:
            self._done = time.monotonic()
            self._changed.notify_all()

    @property
    def reported(self) -> bool:
        """An encoder of this process has reported (the Whisper worker is a thread here)."""
        return self._began > 0

    def wait(self, since: float, timeout: float) -> bool:
        """Wait up to ``timeout`` s for an encoder that began at ``since`` or later to finish; whether it did."""
        with self._changed:
            return self._changed.wait_for(lambda: self._done > 0 and self._began >= since, timeout=timeout)


ENCODER = EncoderWatch()


@dataclass(frozen=True)
class Segment:
    text: str
    heard: str | None = None   # the words the audio itself holds (jarvis.listen.heard); None: not scored
    provisional: bool = False  # the 30 s pass was put off: ``text`` is the words heard of a half command


@dataclass(frozen=True)
class Info:
    language: str
    language_probability: float


class ShortWindowFirst:
    """faster-whisper's ``WhisperModel`` as RealtimeSTT's engine and ``jarvis.listen.stt.Transcriber`` call it
    (``transcribe(audio, **options)`` → segments, info), trying the short window first."""

    def __init__(self, whisper, defer_half_commands: bool = False, decoder=None):
        self.whisper = whisper
        self.defer_half_commands = defer_half_commands
        # CTranslate2's Whisper that decodes and scores the short pass (``one_thread_decoder``); None: whisper's own
        self.decoder = decoder
        self.short_passes = self.kept = self.deferred = 0   # short passes run, kept, 30 s passes put off (tests, logs)
        self._broken = False

    def transcribe(self, audio, full_window: bool = False, **options):
        """Segments and info as faster-whisper's; ``full_window``: the 30 s pass alone (a put-off pass now due)."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        heard_text = None
        if fits(samples) and not full_window and not self._broken and not options.get("word_timestamps"):
            segment, kept = self._short_pass(samples, options)
            info = Info(options.get("language") or "en", 1.0)
            if kept:
                return [segment], info
            heard_text = segment.heard if segment is not None else None
            if self.defer_half_commands and heard_text and sounds_unfinished(heard_text):
                self.deferred += 1
                return [Segment(heard_text, heard_text, provisional=True)], info
        segments, info = self.whisper.transcribe(samples, **options)
        if heard_text is None:
            return segments, info
        # The full window's words, judged by what the short window's audio held: scoring the full pass itself
        # (faster-whisper's word timestamps) took seconds when Whisper looped on a half command.
        return [Segment(" ".join(s.text for s in segments), heard_text)], info

    def _short_pass(self, samples: np.ndarray, options: dict) -> tuple[Segment | None, bool]:
        """The 10 s window's transcript (None if the pass failed) and whether it is sure of it (kept)."""
        try:
            text, avg_logprob, complete, heard_text = self._decode(samples, options)
        except Exception:  # noqa: BLE001 - faster-whisper internals changed: the 30 s pass alone, as before
            log.exception("the short Whisper window failed; commands use the 30 s window from now on")
            self._broken = True
            return None, False
        self.short_passes += 1
        kept = sure(text, avg_logprob, complete)
        self.kept += kept
        return Segment(text, heard_text), kept

    def _decode(self, samples: np.ndarray, options: dict) -> tuple[str, float, bool, str | None]:
        """One pass over a ``WINDOW_S`` window, decoded as faster-whisper decodes a command's window (its features,
        prompt without timestamps, suppressed tokens; greedy or the beam asked for): its text, average
        log-probability, whether it ended before the token cap, and the words the audio itself holds
        (``jarvis.listen.heard``; None if they could not be scored)."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.whisper
        frames = WINDOW_S * 100
        features = model.feature_extractor(samples)[:, :frames]
        content_frames = features.shape[-1]
        features = np.pad(features, [(0, 0), (0, frames - features.shape[-1])])
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=options.get("language") or "en")
        prompt = (options.get("initial_prompt") or "").strip()
        tokens_in = model.get_prompt(tokenizer, tokenizer.encode(" " + prompt) if prompt else [],
                                     without_timestamps=True)
        new_tokens = TOKENS_MIN + int(TOKENS_PER_S * samples.size / RATE)
        cap = min(model.max_length, len(tokens_in) + new_tokens)   # CTranslate2 counts the prompt in the length
        ENCODER.began()
        try:
            encoded = model.encode(features)
        finally:
            ENCODER.done()
        result = (self.decoder or model.model).generate(
            encoded, [tokens_in], beam_size=max(1, int(options.get("beam_size") or 1)),
            max_length=cap, return_scores=True, suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, list(options.get("suppress_tokens") or [-1])))[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)   # as faster-whisper computes it
        text = tokenizer.decode(tokens).strip()
        return text, float(avg_logprob), len(tokens_in) + len(tokens) < cap, \
            self._heard(encoded, tokenizer, tokens, content_frames)

    def _heard(self, encoded, tokenizer, tokens: list[int], content_frames: int) -> str | None:
        """The decoded words the audio holds: their tokens scored after the start of transcript alone (no prompt)."""
        if not tokens:
            return ""
        try:
            (aligned,) = (self.decoder or self.whisper.model).align(encoded, tokenizer.sot_sequence, [tokens],
                                                                    [content_frames])
            return heard([tokenizer.decode([t]) for t in tokens], aligned.text_token_probs)
        except Exception:  # noqa: BLE001 - the words check then judges the whole transcript, as before
            log.exception("scoring Whisper's words against the audio failed")
            return None

    def __getattr__(self, name):
        return getattr(self.whisper, name)


def decodes_on_one_thread(device: str, threads: int) -> bool:
    """Whisper on ``device`` with ``threads`` CPU threads decodes its short passes on a one-thread copy."""
    return device == "cpu" and threads > 1


def one_thread_decoder(model: str, device: str, compute_type: str, threads: int, download_root: str | None = None):
    """A second CTranslate2 copy of Whisper ``model`` (a folder or a name faster-whisper has downloaded) on one
    thread, for the short pass's decoder and scoring, where the main copy runs on ``threads`` CPU threads; None on a
    GPU, with one thread, or if it cannot be loaded (the main copy then decodes, as before)."""
    if not decodes_on_one_thread(device, threads):
        return None
    try:
        import ctranslate2

        path = model
        if not os.path.isdir(path):
            from faster_whisper.utils import download_model

            path = download_model(model, local_files_only=True, cache_dir=download_root)
        return ctranslate2.models.Whisper(path, device="cpu", compute_type=compute_type, intra_threads=1)
    except Exception:  # noqa: BLE001 - an extra: the main copy decodes as before
        log.exception("could not load Whisper's one-thread decoder; the short pass decodes on all its threads")
        return None
