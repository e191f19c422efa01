"""`jarvis ask TEXT`: one typed turn through the brain (skills first, then the LLM), printed as it streams.

With ``--say`` the reply is also spoken through the TTS chain, each sentence as soon as it is generated.
The LLM is loaded only when no skill answers, so "what time is it" works even if the LLM cannot start.
"""
from __future__ import annotations

import sys
import threading
from typing import Iterable, Iterator

from jarvis import events
from jarvis.brain import backends
from jarvis.brain.brain import Brain
from jarvis.brain.llm import LlmResponder
from jarvis.brain.types import STOP, Turn
from jarvis.errors import BadInput


def add_arguments(p) -> None:
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--speaker", metavar="NAME", help="answer as if this enrolled speaker asked (default: unknown)")
    p.add_argument("--say", action="store_true", help="also speak the reply")
    p.add_argument("--backend", choices=["local", "openai", "off"], help="LLM backend (default: settings)")
    p.add_argument("--base-url", metavar="URL", help="OpenAI-compatible server, e.g. http://localhost:11434/v1")
    p.add_argument("--model", metavar="NAME", help="model name on that server")
    p.add_argument("--local-model", metavar="FILE.gguf", help="GGUF model for the local backend")
    p.add_argument("--output-device", metavar="S", help="speaker for --say: name substring")


def run(args, settings) -> int:
    text = args.text.strip()
    if not text:
        raise BadInput("empty_text", "Nothing to ask: give a question, e.g. jarvis ask \"Why is the sky blue?\"")
    brain_settings = settings.brain
    for field, value in (("backend", args.backend), ("base_url", args.base_url), ("model", args.model),
                         ("local_model", args.local_model)):
        if value is not None:
            setattr(brain_settings, field, value)
    speaker = _check_speaker(args.speaker)
    backends.create(brain_settings)  # an unknown backend name fails here, in one line

    bus = events.EventBus()
    failures: list[events.Error] = []
    bus.subscribe(lambda e: failures.append(e) if isinstance(e, events.Error) else None)
    responder = LlmResponder(brain_settings, bus)

    def llm(turn, context):
        _load_into(responder, brain_settings)
        return responder(turn, context)

    player = chain = None
    if args.say:
        chain, player = _voice(settings, args.output_device, bus)
    cancel = threading.Event()
    try:
        response = Brain(fallback=llm).respond(Turn(text=text, speaker=speaker, speaker_score=1.0), cancel=cancel)
        if response.action == STOP:
            return 0
        printed = _printing(response)
        if chain is not None:
            player.play_stream(chain.speak_stream(printed, cancel))
        for _ in printed:  # without --say (or if speech ended early), print the rest
            pass
        print(flush=True)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        if responder.backend is not None:
            responder.backend.close()
        if chain is not None:
            chain.close()
            player.close()
    for failure in failures:
        print(f"error: {failure.message}", file=sys.stderr)
    return 3 if failures else 0


def _check_speaker(name: str | None) -> str:
    if name is None or not name.strip() or name.strip().lower() == "unknown":
        return "unknown"
    from jarvis.speakers.store import SpeakerStore

    enrolled = SpeakerStore().names()
    match = next((n for n in enrolled if n.lower() == name.strip().lower()), None)
    if match is None:
        known = ", ".join(enrolled) if enrolled else "none yet"
        raise BadInput("unknown_speaker", f"No enrolled speaker named '{name.strip()}' (enrolled: {known}). "
                                          f"Enroll with: jarvis enroll {name.strip()} FILE.wav")
    return match


def _load_into(responder: LlmResponder, settings) -> None:
    responder.backend, responder.unavailable = backends.load(settings, warm=False)  # one question: no warm-up


def _printing(chunks: Iterable[str]) -> Iterator[str]:
    """Pass the reply's sentences through, printing each as it arrives; iterating twice prints once."""
    def gen():
        first = True
        for chunk in chunks:
            print(("" if first else " ") + chunk.strip(), end="", flush=True)
            first = False
            yield chunk
    return gen()


def _voice(settings, output_device, bus):
    from jarvis.audio.devices import resolve_output
    from jarvis.audio.player import Player
    from jarvis.speak.chain import TtsChain

    device = output_device if output_device is not None else settings.audio.output_device
    resolve_output(device)  # no speaker: one line, before loading any voice
    chain = TtsChain.from_settings(settings.tts, bus)
    chain.load()
    return chain, Player(device)
