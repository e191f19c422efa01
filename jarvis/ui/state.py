"""What the tray shows: one state from the event stream (no Qt here, so it is easy to test).

States: loading, listening (for the wake word), following up (listening for a follow-up without the wake
word, after a reply), hearing (a command), thinking, speaking, muted, degraded (a TTS engine, the LLM or echo
cancellation is down; Jarvis still works) and error (something needs the user).
"""
from __future__ import annotations

from jarvis import events

STATES = ("loading", "listening", "follow_up", "hearing", "thinking", "speaking", "muted", "degraded", "error")
MICROPHONE_ERRORS = ("audio_device_lost", "audio_stuck")   # cured when the microphone is back (audio_back)

DESCRIPTIONS = {
    "loading": "Loading models…",
    "listening": "Listening for \"Jarvis\"",
    "follow_up": "Listening for a follow-up (no need to say \"Jarvis\")",
    "hearing": "Hearing you…",
    "thinking": "Thinking…",
    "speaking": "Speaking",
    "muted": "Microphone muted",
    "degraded": "Listening (something is down)",
    "error": "Needs attention",
}


class TrayState:
    def __init__(self) -> None:
        self.activity = "loading"      # loading / listening / hearing / thinking / speaking / error
        self.muted = False
        self.degraded: dict[str, str] = {}  # engine (or "llm") -> reason, until it works again
        self.error = ""
        self.error_code = ""
        self.echo = ("", "")           # the echo canceller's last (state, message)

    @property
    def state(self) -> str:
        if self.activity == "error":
            return "error"
        if self.muted and self.activity in ("listening", "follow_up", "hearing"):
            return "muted"
        if self.activity == "listening" and self.degraded:
            return "degraded"
        return self.activity

    def on_event(self, event: events.Event) -> str:
        kind = event.type
        if kind == "ready":
            self.activity, self.error = "listening", ""
        elif kind in ("wake", "speech_start", "playback_paused"):
            self.activity = "hearing" if self.activity != "error" else self.activity
        elif kind in ("speech_end", "transcript"):
            self.activity = "thinking"
        elif kind in ("playback_start", "playback_resumed"):
            self.activity = "speaking"
        elif kind in ("playback_end", "listening", "ignored") or (kind == "reply" and not getattr(event, "text", "")):
            self.activity = "listening" if self.activity != "error" else self.activity
        elif kind == "follow_up":
            self.activity = "follow_up" if self.activity != "error" else self.activity
        elif kind == "echo":
            self.echo = (event.state, event.message)
            # Switched off by the user is a choice, not a fault; unavailable or without a reference is degraded.
            if event.state in ("unavailable", "no_reference"):
                self.degraded["echo"] = event.message
            else:
                self.degraded.pop("echo", None)
        elif kind == "tts_first_chunk":
            self.degraded.pop(getattr(event, "engine", ""), None)
        elif kind == "llm_first_token":
            self.degraded.pop("llm", None)
        elif kind == "degraded":
            self.degraded[event.engine] = event.reason
        elif kind == "recovered":
            self.degraded.pop(event.engine, None)
        elif kind == "audio_back" and self.activity == "error" and self.error_code in MICROPHONE_ERRORS:
            self.activity, self.error = "listening", ""
        elif kind == "error":
            self.error, self.error_code = event.message, event.code
            if event.code in (*MICROPHONE_ERRORS, "listener_failed", "start_failed"):
                self.activity = "error"
            elif self.activity in ("thinking", "speaking"):
                self.activity = "listening"
        return self.state
