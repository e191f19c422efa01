"""The voice loop's parts, each with one job; ``jarvis.pipeline.VoiceLoop`` puts them together.

- ``microphone.MicrophoneFeed``: the one microphone stream, cleaned by the echo canceller, feeding the listener and
  the windows' taps; mute; reconnecting when the device comes back.
- ``speaking.ReplySpeaker``: speaking replies on a thread of their own, barge-in, pausing when a voice talks over a
  reply, the follow-up window after it.
- ``turns.TurnTaker``: each utterance the listener hands over, answered or ignored (its own voice, Whisper's
  hallucinations), with the speaker identified from the same audio.
"""
