"""A child process for tests/e2e/test_reconnect.py: Jarvis's real microphone feed on ``jarvis_mic`` while three
pure-Python threads keep the GIL busy (a loaded assistant: the LLM's tokenizer, the UI, speaker ID), printing its
events as JSON lines. PortAudio's capture thread then often falls behind the audio server mid-fragment, the state
in which a killed PulseAudio deadlocked libpulse (jarvis.audio.pulse_client)."""
from __future__ import annotations

import json
import sys
import threading
import time
from types import SimpleNamespace

from jarvis import events
from jarvis.loop.microphone import MicrophoneFeed


def _keep_the_gil_busy() -> None:
    while True:
        sum(range(200_000))


_printing = threading.Lock()


def _say(line: str) -> None:
    with _printing:   # one JSON object per line, whichever thread prints
        print(line, flush=True)


def main() -> None:
    bus = events.EventBus()
    bus.subscribe(lambda event: _say(event.to_json()))
    audio = SimpleNamespace(input_device="jarvis_mic", block_ms=32, echo_cancellation=False, noise_suppression=False)
    feed = MicrophoneFeed(SimpleNamespace(audio=audio), bus, host=None, stopping=threading.Event(),
                          before_reopen=lambda: None)
    feed.muted = True                  # no listener here: the blocks go to the tap only
    blocks = []
    feed.add_tap(blocks.append)
    feed.start()
    for _ in range(3):
        threading.Thread(target=_keep_the_gil_busy, daemon=True).start()
    _say(json.dumps({"type": "ready"}))
    while True:
        time.sleep(0.5)
        _say(json.dumps({"type": "blocks", "count": len(blocks)}))


if __name__ == "__main__":
    sys.exit(main())
