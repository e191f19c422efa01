"""Each utterance the listener hands over, answered or ignored: Jarvis's own words, Whisper's hallucinations on
noise and an empty command get no reply (an ``ignored`` event says why); the speaker is identified from the very
audio that was transcribed (started when the command ended, while Whisper runs); the brain answers and the
``ReplySpeaker`` says it. Every event of the turn carries the turn id the listener gave it."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from jarvis import events
from jarvis.brain.types import Response, Turn
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
        self._ahead: _Ahead | None = None   # the answer worked out in the command's last pause (prepare_early)
        self._pause_speaker: tuple[int | None, Future] | None = None   # (turn, speaker ID) of its last pause
        self._ahead_lock = threading.Lock()
        self._id_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speaker-id")
        self._prepare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-reply")

    def close(self) -> None:
        self._id_pool.shutdown(wait=False)
        self._prepare_pool.shutdown(wait=False)

    def run(self) -> None:
        """The loop thread: until stopped, take the next utterance and answer it."""
        try:
            self._run()
        except BaseException:   # SystemExit and the like would end the thread without a word
            log.exception("the voice loop stopped")
            raise

    def _run(self) -> None:
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
                with self._ahead_lock:
                    ahead, self._ahead, self._pause_speaker = self._ahead, None, None
                self._drop(ahead)
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
        with self._ahead_lock:
            ahead, self._ahead = self._ahead, None
        this_pause = ahead is not None and ahead.key == (utterance.turn, utterance.text)
        if this_pause and ahead.speaker is not None:
            early = ahead.speaker   # the words did not change after that pause: its audio held the whole command
        reason = self.no_reply_reason(utterance.text)
        if reason:
            self._drop(ahead)
            log.info("no reply to %r: %s", utterance.raw_text, reason)
            self.bus.emit(events.Ignored(text=utterance.raw_text, reason=reason))
            return
        match = early.result() if early is not None else self._identify(utterance.audio)
        self.bus.emit(events.Speaker(name=match.name, score=round(float(match.score), 4)))
        turn = self._brain_turn(utterance.text, match)
        with self._ahead_lock:   # the answer worked out in the pause, if it is this turn's; else it stops now
            adopted = this_pause and ahead.response is not None and ahead.turn == turn
            if not adopted:
                self._drop(ahead)
        if adopted:
            response, cancel = ahead.response, ahead.cancel
            self.brain.adopt(response)
        else:
            cancel = threading.Event()  # this turn's: barge-in stops its speech and its LLM generation
            response = self.brain.respond(turn, cancel=cancel)
        if response.action == "stop":
            self.speaker.barge_in()
            self.bus.emit(events.Reply(text=""))
            return
        self.speaker.speak_async(response, cancel)

    def _brain_turn(self, text: str, match) -> Turn:
        conversation = "" if match.known else self.strangers.key_for(match.embedding)
        return Turn(text=text, speaker=match.name, speaker_score=match.score, conversation=conversation)

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

    # -- answering ahead ---------------------------------------------------------------------------
    def prepare_early(self, text: str, turn: int | None = None, audio=None) -> None:
        """The command's words and audio as its last pause began (the listener's early transcript, on the thread
        that read it). Its answer is worked out now, as if the turn were over: the speaker is identified on that
        audio, the brain answers when that changes nothing (``Brain.ahead``: a skill that only reads, or the LLM,
        which remembers nothing until its answer is adopted) and the first sentence is synthesized
        (``TtsChain.prepare``). If the turn ends with these words, ``_handle`` adopts it and the reply plays at
        once; otherwise it is stopped and dropped. Nothing is said here."""
        settings = self._settings() if self._settings is not None else None
        if settings is not None and not settings.tts.prepare_replies:
            return
        with self._ahead_lock:
            paused = self._pause_speaker if self._pause_speaker and self._pause_speaker[0] == turn else None
        if paused is not None:
            speaker = paused[1]   # identified as the pause began
        else:
            speaker = self._id_pool.submit(self._identify, audio) if audio is not None and len(audio) else None
        ahead = _Ahead((turn, text), speaker)
        with self._ahead_lock:
            previous, self._ahead = self._ahead, ahead
            self._drop(previous)   # the person went on after that pause
        self._prepare_pool.submit(self._prepare, ahead)

    def went_on(self) -> None:
        """The person spoke again after the pause: what was worked out for it stops (an LLM generating an answer to
        half a sentence would slow Whisper on the rest)."""
        with self._ahead_lock:
            ahead, self._ahead = self._ahead, None
            self._pause_speaker = None   # that pause's audio no longer holds the whole command
            self._drop(ahead)

    def _prepare(self, ahead: "_Ahead") -> None:
        with events.in_turn(ahead.key[0]):   # the LLM's events are the turn's
            self._work_out(ahead)

    def _work_out(self, ahead: "_Ahead") -> None:
        tts = self.host.tts
        text = ahead.key[1]
        if tts is None or ahead.cancel.is_set() or self.no_reply_reason(text):
            return
        try:
            # A skill's answer does not depend on who asked: its sentence is synthesized now, without waiting for
            # the speaker, and the turn's own answer (the same words, made when it ends) plays it.
            skill_answer = self.brain.ahead(Turn(text=text), ahead.cancel, fallback=False)
            if skill_answer is not None:
                self._prepare_first(tts, skill_answer, ahead)
                return
            match = ahead.speaker.result() if ahead.speaker is not None else _unknown()
            turn = self._brain_turn(text, match)
            response = self.brain.ahead(turn, ahead.cancel)
            with self._ahead_lock:
                if response is None or ahead.cancel.is_set():
                    return
                ahead.turn, ahead.response = turn, response   # _handle adopts it if the turn is this one
            self._prepare_first(tts, response, ahead)  # the LLM generates its first clause now
        except Exception:  # noqa: BLE001 - the reply is then made when the turn ends, as without this
            log.exception("preparing a reply failed")

    @staticmethod
    def _prepare_first(tts, response: Response, ahead: "_Ahead") -> None:
        first = next(iter(response), "")   # read again by the reply, which replays it
        if first.strip() and not ahead.cancel.is_set() and tts.prepare(first):
            log.debug("prepared %r for %r", first, ahead.key[1])

    @staticmethod
    def _drop(ahead: "_Ahead | None") -> None:
        if ahead is not None:
            ahead.cancel.set()   # stops its LLM generation; what it would have remembered is never written

    def identify_pause(self, audio, turn: int | None = None) -> None:
        """A pause of the command began (the listener's ``on_paused``): its speaker is identified now, while
        Whisper and the end-of-turn model hear the pause, not after them."""
        with self._ahead_lock:
            self._pause_speaker = (turn, self._id_pool.submit(self._identify, audio))

    def identify_early(self, audio) -> None:
        """The command just ended: identify its speaker while Whisper transcribes the same recording. When no voice
        came after its last pause (``went_on`` forgets it), the speaker found on the pause's audio is this
        recording's: no second pass competes with the reply for the CPU."""
        with self._ahead_lock:
            paused, self._pause_speaker = self._pause_speaker, None
        self._early_speaker = paused[1] if paused is not None else self._id_pool.submit(self._identify, audio)

    def _identify(self, audio):
        try:
            return self.host.identifier.identify(audio)
        except JarvisError as exc:  # too little speech for a voice print: not an error for the turn
            log.info("speaker ID skipped: %s", exc)
            return _unknown()


def _unknown():
    from jarvis.speakers.identify import Match

    return Match(name="unknown", score=0.0)


@dataclass
class _Ahead:
    """An answer worked out while the command's last pause was still being heard."""
    key: tuple[int | None, str]          # (the turn, the words heard then)
    speaker: Future | None               # speaker ID on the pause's audio
    turn: Turn | None = None             # the brain's turn, once the speaker was known
    response: Response | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
