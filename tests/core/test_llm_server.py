"""The LLM brain against a real OpenAI-compatible server: llama-cpp-python's own server on the bundled SmolLM2.

One server serves the module (a second, demanding an API key, only for the key tests). The answers
are real generations at temperature 0. Only two failure cases use fakes (see tests/llm_server.py):
a garbled event stream and a server that accepts but never answers.
"""
from __future__ import annotations

import threading
import time

import pytest

from jarvis import events
from jarvis.brain.backends import OpenAICompatibleBackend
from jarvis.brain.brain import Brain
from jarvis.brain.llm import LlmResponder
from jarvis.brain.types import Turn
from jarvis.config import BrainSettings
from tests.llm_server import LlmServer, MalformedStreamServer, SilentServer, free_port

pytestmark = pytest.mark.slow

RIGHT_KEY = "right-key"
FAILURE_BOUND_S = 10.0


@pytest.fixture(scope="module")
def server():
    with LlmServer() as running:
        yield running


@pytest.fixture(scope="module")
def keyed_server():
    with LlmServer(api_key=RIGHT_KEY) as running:
        yield running


class Setup:
    """A Brain whose fallback is an LlmResponder on an OpenAICompatibleBackend, and the events it emitted."""

    def __init__(self, base_url: str, api_key: str | None = "not-needed", timeout_s: float = 20.0,
                 max_tokens: int = 160):
        self.settings = BrainSettings(backend="openai", base_url=base_url, model="smollm2", temperature=0.0,
                                      timeout_s=timeout_s, max_tokens=max_tokens)
        self.bus = events.EventBus()
        self.events: list[events.Event] = []
        self.bus.subscribe(self.events.append)
        self.backend = OpenAICompatibleBackend(base_url, "smollm2", timeout_s=timeout_s, api_key=api_key)
        self.responder = LlmResponder(self.settings, self.bus, self.backend)
        self.brain = Brain(fallback=self.responder)

    def errors(self) -> list[events.Error]:
        return [e for e in self.events if isinstance(e, events.Error)]

    def close(self) -> None:
        self.backend.close()


@pytest.fixture
def make_setup():
    made: list[Setup] = []

    def make(*args, **kwargs) -> Setup:
        made.append(Setup(*args, **kwargs))
        return made[-1]

    yield make
    for setup in made:
        setup.close()


def llm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.is_alive() and t.name in ("llm", "llm-cancel")]


def wait_no_llm_threads(timeout_s: float = 2.0) -> list[threading.Thread]:
    deadline = time.monotonic() + timeout_s
    while llm_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return llm_threads()


def test_an_open_question_is_answered_by_the_server(server, make_setup):
    setup = make_setup(server.base_url)
    response = setup.brain.respond(Turn("What is the capital of France?", "alice"))

    assert response.source == "llm"
    assert "Paris" in response.text
    first_tokens = [e for e in setup.events if isinstance(e, events.LlmFirstToken)]
    assert [e.backend for e in first_tokens] == [f"smollm2 at {server.base_url}"]
    assert setup.errors() == []
    # The same question from the same speaker in a fresh conversation comes from the cache.
    setup.responder.memory.forget("alice")
    assert setup.brain.respond(Turn("What is the capital of France?", "alice")).source == "llm-cache"


def test_each_speaker_has_their_own_memory_through_the_server(server, make_setup):
    setup = make_setup(server.base_url)
    brain = setup.brain

    told = brain.respond(Turn("The secret word is banana.", "alice")).text
    assert "banana" in told.lower()
    recalled = brain.respond(Turn("What is the secret word?", "alice")).text
    assert "banana" in recalled.lower()

    bob_turn = Turn("What is the secret word?", "bob")
    bob_prompt = setup.responder.messages(bob_turn)
    assert [m["role"] for m in bob_prompt] == ["system", "user"]
    assert "bob" in bob_prompt[0]["content"]
    assert not any("banana" in m["content"].lower() for m in bob_prompt)
    alice_prompt = setup.responder.messages(Turn("What is the secret word?", "alice"))
    assert any("banana" in m["content"].lower() for m in alice_prompt[1:-1])

    answer = brain.respond(bob_turn).text
    assert answer.strip()
    assert "banana" not in answer.lower()


class TimedBackend:
    """Delegates to the real backend; records when the server's stream ended (the last token arrived)."""

    def __init__(self, backend):
        self.backend = backend
        self.name, self.label = backend.name, backend.label
        self.ended_at: float | None = None

    def load(self):
        self.backend.load()

    def warmup(self, system: str = ""):
        self.backend.warmup(system)

    def close(self):
        self.backend.close()

    def stream(self, *args, **kwargs):
        try:
            yield from self.backend.stream(*args, **kwargs)
        finally:
            self.ended_at = time.monotonic()


def test_the_first_sentence_arrives_while_the_rest_is_generated(server, make_setup):
    setup = make_setup(server.base_url, max_tokens=160)
    timed = TimedBackend(setup.backend)
    setup.responder.backend = timed

    arrivals: list[tuple[float, str]] = []
    for sentence in setup.brain.respond(Turn("Why is the sky blue?", "carol")):
        arrivals.append((time.monotonic(), sentence))
    finished = time.monotonic()

    assert len(arrivals) > 1, arrivals
    assert timed.ended_at is not None
    assert arrivals[0][0] < timed.ended_at, "the first sentence came only after generation ended"
    assert arrivals[0][0] < arrivals[-1][0] <= finished
    assert "blue" in " ".join(s for _, s in arrivals).lower()


def test_cancel_after_the_first_sentence_stops_generation_and_remembers_nothing(server, make_setup):
    setup = make_setup(server.base_url, max_tokens=160)
    cancel = threading.Event()
    timed = TimedBackend(setup.backend)
    setup.responder.backend = timed
    response = setup.brain.respond(Turn("Tell me a long story about a dragon.", "dave"), cancel=cancel)

    chunks = iter(response)
    first = next(chunks)
    assert first.strip()
    time.sleep(0.4)  # the first sentence is being spoken; later ones are generated meanwhile
    assert timed.ended_at is None, "generation ended before the cancel: the answer is too short for this test"
    cancel.set()
    cancelled_at = time.monotonic()
    rest = list(chunks)
    ended_in = time.monotonic() - cancelled_at

    assert ended_in < 1.0
    assert rest == [], "sentences were still yielded after the cancel"
    assert wait_no_llm_threads() == [], "the generation thread or its stream watcher is still running"
    assert setup.responder.memory.history("dave") == []
    assert len(setup.responder.cache) == 0
    assert setup.errors() == []
    # The server is free again: the next question is answered at once.
    assert "Paris" in setup.brain.respond(Turn("What is the capital of France?", "erin")).text


def assert_failed_with_apology(setup: Setup, code: str, bound_s: float = FAILURE_BOUND_S) -> float:
    started = time.monotonic()
    response = setup.brain.respond(Turn("Tell me a story about a dragon.", "alice"))
    chunks = list(response)
    took = time.monotonic() - started

    assert took < bound_s
    assert response.source == "llm"
    assert len(chunks) == 1 and chunks[0].startswith("Sorry"), chunks
    errors = setup.errors()
    assert [e.code for e in errors] == [code], errors
    assert errors[0].message.strip()
    assert setup.responder.memory.history("alice") == []
    assert wait_no_llm_threads() == []
    # Skills still work after the failure.
    skill = setup.brain.respond(Turn("what time is it", "alice"))
    assert skill.source == "time" and skill.text.strip()
    return took


def test_an_unreachable_server_gets_a_quick_apology(make_setup):
    setup = make_setup(f"http://127.0.0.1:{free_port()}/v1")
    assert_failed_with_apology(setup, "llm_unreachable", bound_s=5.0)
    assert "Cannot reach" in setup.errors()[0].message


def test_a_server_that_never_answers_times_out():
    with SilentServer() as silent:
        setup = Setup(silent.base_url, timeout_s=1.0)
        try:
            took = assert_failed_with_apology(setup, "llm_timeout")
        finally:
            setup.close()
        assert silent.accepted >= 1
        assert took >= 0.9  # the read timeout fired, not a connection error


def test_a_wrong_api_key_is_refused(keyed_server, make_setup):
    setup = make_setup(keyed_server.base_url, api_key="wrong")
    assert_failed_with_apology(setup, "llm_bad_key")
    assert "llm_api_key" in setup.errors()[0].message

    right = make_setup(keyed_server.base_url, api_key=RIGHT_KEY)
    assert "Paris" in right.brain.respond(Turn("What is the capital of France?", "alice")).text
    assert right.errors() == []


def test_a_malformed_stream_is_reported(make_setup):
    with MalformedStreamServer() as fake:
        setup = make_setup(fake.base_url)
        assert_failed_with_apology(setup, "llm_bad_stream")


def test_the_api_key_comes_from_the_keyring(keyed_server, secret_service, make_setup):
    from jarvis import secrets

    secrets.delete_secret(secrets.LLM_API_KEY)
    setup = make_setup(keyed_server.base_url, api_key=None)
    assert_failed_with_apology(setup, "llm_bad_key")  # no key stored: the server refuses

    secrets.set_secret(secrets.LLM_API_KEY, RIGHT_KEY)
    try:
        answer = setup.brain.respond(Turn("What is the capital of France?", "bob"))
        assert "Paris" in answer.text
        assert [e.code for e in setup.errors()] == ["llm_bad_key"]  # only the earlier failure
    finally:
        secrets.delete_secret(secrets.LLM_API_KEY)
