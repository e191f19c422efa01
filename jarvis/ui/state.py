"""What the tray shows: one state from the event stream (no Qt here, so it is easy to test).

States: loading, listening (for the wake word), hearing (a command), thinking, speaking, muted,
degraded (a TTS engine or the LLM is down; Jarvis still works) and error (something needs the user).
"""
from __future__ import annotations

from jarvis import events

STATES = ("loading", "listening", "hearing", "thinking", "speaking", "muted", "degraded", "error")

DESCRIPTIONS = {
    "loading": "Loading models…",
    "listening": "Listening for \"Jarvis\"",
    "hearing": "Hearing you…",
    "thinking": "Thinking…",
    "speaking": "Speaking",
    "muted": "Microphone muted",
    "degraded": "Listening (a voice engine or the language model is down)",
    "error": "Needs attention",
}


class TrayState:
    def __init__(self) -> None:
        self.activity = "loading"      # loading / listening / hearing / thinking / speaking / error
        self.muted = False
        self.degraded: dict[str, str] = {}  # engine (or "llm") -> reason, until it works again
        self.error = ""
        self.error_code = ""

    @property
    def state(self) -> str:
        if self.activity == "error":
            return "error"
        if self.muted and self.activity in ("listening", "hearing"):
            return "muted"
        if self.activity == "listening" and self.degraded:
            return "degraded"
        return self.activity

    def on_event(self, event: events.Event) -> str:
        kind = event.type
        if kind == "ready":
            self.activity, self.error = "listening", ""
        elif kind in ("wake", "speech_start"):
            self.activity = "hearing" if self.activity != "error" else self.activity
        elif kind in ("speech_end", "transcript"):
            self.activity = "thinking"
        elif kind == "playback_start":
            self.activity = "speaking"
        elif kind == "playback_end" or (kind == "reply" and not getattr(event, "text", "")):
            self.activity = "listening"
        elif kind == "tts_first_chunk":
            self.degraded.pop(getattr(event, "engine", ""), None)
        elif kind == "llm_first_token":
            self.degraded.pop("llm", None)
        elif kind == "degraded":
            self.degraded[event.engine] = event.reason
        elif kind == "audio_back" and self.activity == "error" and self.error_code == "audio_device_lost":
            self.activity, self.error = "listening", ""
        elif kind == "error":
            self.error, self.error_code = event.message, event.code
            if event.code in ("audio_device_lost", "listener_failed", "start_failed"):
                self.activity = "error"
            elif self.activity in ("thinking", "speaking"):
                self.activity = "listening"
        return self.state
