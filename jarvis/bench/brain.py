"""`jarvis bench brain`: time to first token and to first spoken audio for open questions.

Each question goes through the same path as a spoken turn after its transcript: the brain (skills do
not match these questions), the LLM responder streaming sentences, and the TTS chain speaking the first
sentence while the rest is generated. Timed from the moment the question is asked:

- first token: the LLM's first piece of text (its ``llm_first_token`` event);
- first sentence: the first complete sentence the splitter hands to TTS;
- first audio: the first synthesized audio chunk handed to the player (device latency not included).

Every question starts a fresh conversation with the answer cache off, after one warm-up question.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from jarvis.bench.stats import hardware as _hardware
from jarvis.bench.stats import stats as _stats
from jarvis.bench.stats import versions, write_json

QUESTIONS = [
    "Why is the sky blue?", "What is the capital of Italy?", "How do plants make food?",
    "What is a black hole?", "Give me a tip for sleeping better.", "Why do cats purr?",
    "What causes rain?", "How far away is the moon?", "What is photosynthesis?",
    "Tell me something interesting about octopuses.", "How does a rainbow form?", "What is gravity?",
]


def bench(settings, questions: list[str], engine: str | None = None, progress=print) -> dict[str, Any]:
    from jarvis import events
    from jarvis.brain import backends
    from jarvis.brain.brain import Brain
    from jarvis.brain.llm import LlmResponder
    from jarvis.brain.types import Turn
    from jarvis.speak.chain import TtsChain

    brain_settings = settings.brain
    brain_settings.cache_size = 0
    backend = backends.create(brain_settings)
    if backend is None:
        from jarvis.errors import BadInput
        raise BadInput("bench_needs_llm", "brain.backend is off: pick local or openai (--backend).")
    started = time.perf_counter()
    backend.load()
    backend.warmup()
    llm_load_s = time.perf_counter() - started
    tts = settings.tts
    if engine:
        tts.engines = [engine] + [n for n in tts.engines if n != engine]
    bus = events.EventBus()
    first_tokens: list[float] = []
    spoke: list[str] = []
    bus.subscribe(lambda e: first_tokens.append(e.seconds) if e.type == "llm_first_token" else
                  spoke.append(e.engine) if e.type == "tts_first_chunk" else None)
    chain = TtsChain.from_settings(tts, bus)
    chain.load()
    responder = LlmResponder(brain_settings, bus, backend)
    brain = Brain(fallback=responder)

    def one(question: str) -> dict[str, Any]:
        responder.memory.forget()
        t0 = time.perf_counter()
        response = brain.respond(Turn(question))
        sentence_at: list[float] = []

        def timed():
            for chunk in response:
                if not sentence_at:
                    sentence_at.append(time.perf_counter() - t0)
                yield chunk

        first_audio = None
        audio_s = 0.0
        for rate, chunk in chain.speak_stream(timed()):
            if first_audio is None:
                first_audio = time.perf_counter() - t0
            audio_s += len(chunk) / rate
        total = time.perf_counter() - t0
        return {"question": question, "source": response.source, "first_token_s": first_tokens[-1],
                "first_sentence_s": sentence_at[0] if sentence_at else None, "first_audio_s": first_audio,
                "total_s": total, "audio_s": round(audio_s, 2), "reply": response.text_so_far}

    progress("warm-up")
    one("Hello, who are you?")
    runs = []
    for question in questions:
        first_tokens.clear()
        runs.append(one(question))
        r = runs[-1]
        progress(f"{question!r}: first token {r['first_token_s'] * 1000:.0f} ms, first sentence "
                 f"{r['first_sentence_s'] * 1000:.0f} ms, first audio {r['first_audio_s'] * 1000:.0f} ms")
    chain.close()
    backend.close()
    return {
        "benchmark": "brain", "llm": backend.label, "tts_engine": spoke[-1] if spoke else None,
        "hardware": _hardware(), "questions": len(runs), "llm_load_s": round(llm_load_s, 3),
        "settings": {"max_tokens": brain_settings.max_tokens, "temperature": brain_settings.temperature,
                     "threads": getattr(backend, "threads", None)},
        "first_token_ms": _stats([r["first_token_s"] for r in runs]),
        "first_sentence_ms": _stats([r["first_sentence_s"] for r in runs]),
        "first_audio_ms": _stats([r["first_audio_s"] for r in runs]),
        "versions": _versions(), "runs": runs,
        "command": " ".join(["jarvis" if i == 0 else a for i, a in enumerate(sys.argv)]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _versions() -> dict[str, str]:
    return versions(("llama-cpp-python", "openai", "piper-tts", "onnxruntime"))


def format_text(result: dict[str, Any]) -> str:
    lines = [f"Brain benchmark: {result['llm']} + {result['tts_engine']} on {result['hardware']}; "
             f"{result['questions']} questions"]
    for key, label in (("first_token_ms", "first token"), ("first_sentence_ms", "first sentence"),
                       ("first_audio_ms", "first audio")):
        s = result[key]
        lines.append(f"  {label:15} P50 {s['p50']:7.0f} ms   P95 {s['p95']:7.0f} ms   max {s['max']:7.0f} ms")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many of the built-in questions")
    parser.add_argument("--backend", choices=["local", "openai"], help="LLM backend (default: settings)")
    parser.add_argument("--base-url", metavar="URL", help="OpenAI-compatible server for --backend openai")
    parser.add_argument("--model", metavar="NAME", help="model name on that server")
    parser.add_argument("--engine", default="piper", help="TTS engine tried first (default: piper)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")


def main(args, settings) -> int:
    for field, value in (("backend", args.backend), ("base_url", args.base_url), ("model", args.model)):
        if value is not None:
            setattr(settings.brain, field, value)
    count = max(1, min(args.questions, len(QUESTIONS)))
    result = bench(settings, QUESTIONS[:count], args.engine, progress=lambda line: print(line, file=sys.stderr))
    print(format_text(result))
    if args.out:
        write_json(args.out, result)
    return 0
