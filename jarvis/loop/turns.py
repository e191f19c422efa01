"""Each utterance the listener hands over, answered or ignored: Jarvis's own words, Whisper's hallucinations on
noise and an empty command get no reply (an ``ignored`` event says why); the speaker is identified from the very
audio that was transcribed (started when the command ended, while Whisper runs); the brain answers and the
``ReplySpeaker`` says it. Every event of the turn carries the turn id the listener gave it."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from jarvis import events
from jarvis.brain.types import Turn
from jarvis.errors import JarvisError
from jarvis.listen.transcript import is_hallucination

log = logging.getLogger(__name__)


class TurnTaker:
    def __init__(self, bus: events.EventBus, host, brain, speaker, own_voice, strangers, stopping: threading.Event,
                 settings: Callable | None = None):
        """``settings()``: the settings now in use (``tts.prepare_replies`` is read at each command)."""
        self._settings = settings
        self.bus = bus
        self.host = host
        self.brain = brain
        self.speaker = speaker            # ReplySpeaker
        self.own_voice = own_voice        # what Jarvis said lately: a transcript of it is not a command
        self.strangers = strangers        # unknown voices, each with a conversation of its own
        self._stopping = stopping
        self._early_speaker: Future | None = None  # speaker ID started when the command ended
        # Speaker ID started when the command's last pause began (answering ahead): (turn, words heard, its result)
        self._pause_speaker: tuple[int | None, str, Future] | None = None
        self._id_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speaker-id")
        self._prepare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-reply")

    def close(self) -> None:
        self._id_pool.shutdown(wait=False)
        self._prepare_pool.shutdown(wait=False)

    def run(self) -> None:
        """The loop thread: until stopped, take the next utterance and answer it."""
        while not self._stopping.is_set():
            try:
                utterance = self.host.listener.next_utterance()
            except Exception as exc:  # the recorder died: report and stop rather than spin
                log.exception("listener failed")
                self.bus.emit(events.Error(code="listener_failed",
                                           message=f"Speech recognition stopped ({exc}). Restart Jarvis."))
                return
            if utterance is None or self._stopping.is_set():
                self._early_speaker = None
                continue
            with events.in_turn(utterance.turn):
                try:
                    self._handle(utterance)
                except JarvisError as exc:
                    self.bus.emit(events.Error(code=exc.code, message=exc.message))
                except Exception as exc:
                    log.exception("turn failed")
                    self.bus.emit(events.Error(code="turn_failed", message=f"That turn failed ({exc})."))

    def _handle(self, utterance) -> None:
        self.bus.emit(events.Transcript(text=utterance.text))
        early, self._early_speaker = self._early_speaker, None
        ahead, self._pause_speaker = self._pause_speaker, None
        if ahead is not None and ahead[:2] == (utterance.turn, utterance.text):
            early = ahead[2]   # the words did not change after that pause: its audio held the whole command
        reason = self.no_reply_reason(utterance.text)
        if reason:
            log.info("no reply to %r: %s", utterance.raw_text, reason)
            self.bus.emit(events.Ignored(text=utterance.raw_text, reason=reason))
            return
        match = early.result() if early is not None else self._identify(utterance.audio)
        self.bus.emit(events.Speaker(name=match.name, score=round(float(match.score), 4)))
        cancel = threading.Event()  # this turn's: barge-in stops its speech and its LLM generation
        conversation = "" if match.known else self.strangers.key_for(match.embedding)
        turn = Turn(text=utterance.text, speaker=match.name, speaker_score=match.score, conversation=conversation)
        response = self.brain.respond(turn, cancel=cancel)
        if response.action == "stop":
            self.speaker.barge_in()
            self.bus.emit(events.Reply(text=""))
            return
        self.speaker.speak_async(response, cancel)

    def no_reply_reason(self, text: str) -> str:
        """Why a transcript gets no reply: "empty" (only the wake word), "hallucination" (Whisper's words on
        noise or silence) or "own_voice" (Jarvis heard itself); "" for a real command."""
        if not text.strip(" .,!?"):
            return "empty"
        if is_hallucination(text):
            return "hallucination"
        if self.own_voice.heard(text):
            return "own_voice"
        return ""

    def prepare_early(self, text: str, turn: int | None = None, audio=None) -> None:
        """The command's words and audio as its last pause began (the listener's early transcript): the speaker is
        identified now, and an answer that only reads is worked out and its first sentence synthesized
        (``TtsChain.prepare``), so that if the turn ends with these words the reply plays at once. Nothing is said
        or remembered here."""
        settings = self._settings() if self._settings is not None else None
        if settings is not None and not settings.tts.prepare_replies:
            return
        if audio is not None and len(audio):
            self._pause_speaker = (turn, text, self._id_pool.submit(self._identify, audio))
        self._prepare_pool.submit(self._prepare, text)

    def _prepare(self, text: str) -> None:
        tts = self.host.tts
        if tts is None or self.no_reply_reason(text):
            return
        try:
            response = self.brain.preview(Turn(text=text, speaker="unknown"))
            if response is not None and tts.prepare(response.text):
                log.debug("prepared %r for %r", response.text, text)
        except Exception:  # noqa: BLE001 - the reply is then made when the turn ends, as without this
            log.exception("preparing a reply failed")

    def identify_early(self, audio) -> None:
        """The command just ended: identify its speaker while Whisper transcribes the same recording."""
        self._early_speaker = self._id_pool.submit(self._identify, audio)

    def _identify(self, audio):
        from jarvis.speakers.identify import Match

        try:
            return self.host.identifier.identify(audio)
        except JarvisError as exc:  # too little speech for a voice print: not an error for the turn
            log.info("speaker ID skipped: %s", exc)
            return Match(name="unknown", score=0.0)
