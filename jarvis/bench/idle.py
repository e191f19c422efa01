"""`jarvis bench idle`: what the always-on loop costs while nobody speaks.

Starts a private virtual audio server (PulseAudio with the ``jarvis_mic`` microphone, fed digital
silence, or with ``--room-noise DBFS`` a room's steady pink noise, and the ``jarvis_speaker`` speaker; the
user's own audio is never touched), runs the real voice loop on it with the current settings (wake word, VAD,
Whisper worker process, speaker encoder, TTS chain, LLM), and measures, once it is ready:

- memory: the resident set size (RSS) of this process plus every process the loop started (on Linux
  RealtimeSTT runs its Whisper worker as a thread, so that is multiprocessing's resource tracker; on
  macOS and Windows the worker is a process), right after warm-up and again at the end. RSS counts pages shared
  between processes once per process, so the total is an upper bound; USS (pages only that process
  holds) is reported beside it;
- CPU: user + system time of those processes over ``--seconds`` of silence, as a percentage of one
  core (100 % = one core busy all the time), with the busiest one-second sample.

The audio server itself is left out (a desktop runs one anyway). Goals: at most 10 % of one core,
at most 2 GB RSS for the CPU stack.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from typing import Any

from jarvis.bench.stats import command, date, hardware, memory_gb, versions, write_json

CPU_GOAL_PERCENT = 10.0
RSS_GOAL_GB = 2.0
MIC, SPEAKER = "jarvis_mic", "jarvis_speaker"
DISTS = ("RealtimeSTT", "faster-whisper", "ctranslate2", "silero-vad", "onnxruntime", "webrtcvad-wheels",
         "pvporcupine", "resemblyzer", "torch", "piper-tts", "llama-cpp-python", "sounddevice", "numpy", "psutil")

log = logging.getLogger(__name__)


class Processes:
    """This process and the processes started after ``__init__`` (its descendants); those alive before
    (an audio server this process started, a test's helpers) are left out."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.before = {p.pid for p in self.me.children(recursive=True)}

    def current(self) -> list:
        return [self.me] + [p for p in self.me.children(recursive=True) if p.pid not in self.before]

    def cpu_seconds(self) -> dict[int, float]:
        out = {}
        for proc in self.current():
            try:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
            except Exception:   # it ended meanwhile
                pass
        return out

    def memory(self) -> dict[str, Any]:
        rows = []
        for proc in self.current():
            try:
                with proc.oneshot():
                    info = proc.memory_full_info()
                    rows.append({"pid": proc.pid, "name": _name(proc), "rss_mb": round(info.rss / 1e6, 1),
                                 "uss_mb": round(info.uss / 1e6, 1)})
            except Exception:
                pass
        return {"rss_mb": round(sum(r["rss_mb"] for r in rows), 1),
                "uss_mb": round(sum(r["uss_mb"] for r in rows), 1), "processes": rows}


def _name(proc) -> str:
    try:
        cmd = proc.cmdline()
    except Exception:
        cmd = []
    if proc.pid == os.getpid():
        return "jarvis (main process)"
    text = " ".join(cmd)
    if "resource_tracker" in text:
        return "multiprocessing resource tracker"
    if "multiprocessing" in text or "spawn_main" in text:
        return "multiprocessing child (RealtimeSTT worker)"
    return proc.name()


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two snapshots; a process that appeared in between counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def measure(settings, seconds: float, progress=print, noise=None, heard: str = "digital silence") -> dict[str, Any]:
    """Run the voice loop on the current environment's ``jarvis_mic`` / ``jarvis_speaker`` and measure it;
    ``noise``: the process feeding the microphone ``heard``, which must still be playing at the end."""
    from jarvis import events
    from jarvis.errors import NotAvailable
    from jarvis.pipeline import VoiceLoop

    try:
        import psutil  # noqa: F401
    except ImportError as exc:
        raise NotAvailable("psutil_missing", "The idle benchmark needs psutil: pip install psutil") from exc
    settings.audio.input_device, settings.audio.output_device = MIC, SPEAKER
    procs = Processes()
    bus = events.EventBus()
    seen: list[events.Event] = []
    bus.subscribe(seen.append)
    loop = VoiceLoop(settings, bus)
    progress("loading and warming every model (the voice loop's start)")
    t0 = time.monotonic()
    try:
        loop.start()
        load_s = time.monotonic() - t0
        if not any(e.type == "ready" for e in seen):
            raise RuntimeError("the voice loop started without a ready event")
        memory_ready = procs.memory()
        progress(f"ready after {load_s:.1f} s: RSS {memory_ready['rss_mb']:.0f} MB; "
                 f"listening to {seconds:g} s of {heard}")
        counted_from = len(seen)
        start_cpu, start = procs.cpu_seconds(), time.monotonic()
        samples = []
        last_cpu, last = start_cpu, start
        while (now := time.monotonic()) < start + seconds:
            time.sleep(min(1.0, start + seconds - now))
            cpu, now = procs.cpu_seconds(), time.monotonic()
            samples.append(100 * _used(last_cpu, cpu) / (now - last))
            last_cpu, last = cpu, now
            if loop.ended:
                raise RuntimeError("the voice loop stopped while idle: "
                                   + "; ".join(f"{e.type}: {getattr(e, 'message', '')}" for e in seen[counted_from:]))
        cpu_s, wall_s = _used(start_cpu, last_cpu), last - start
        if noise is not None and noise.poll() is not None:
            raise RuntimeError(f"the microphone's {heard} ended before the measurement did")
        wake = getattr(loop.host.listener, "wake_detector", None)
        detector = getattr(wake, "detector", None)
        memory_end = procs.memory()
        blocks = loop.capture.blocks if loop.capture is not None else None
        tts = loop.host.tts.status() if loop.host.tts is not None else []
        llm = loop.host.llm.label if loop.host.llm is not None else (
            f"unavailable: {loop.host.llm_failure.message}" if loop.host.llm_failure else "off")
    finally:
        progress("stopping the voice loop")
        t_stop = time.monotonic()
        loop.stop()
        stop_s = time.monotonic() - t_stop
    percent = 100 * cpu_s / wall_s
    rss_gb = max(memory_ready["rss_mb"], memory_end["rss_mb"]) / 1000
    s = settings
    return {
        "benchmark": "idle", "hardware": hardware(), "memory_gb": memory_gb(),
        "versions": versions(DISTS), "command": command(), "date": date(),
        "seconds": round(wall_s, 2), "load_s": round(load_s, 2), "stop_s": round(stop_s, 2),
        "audio": f"private PulseAudio: {MIC} fed {heard}, output {SPEAKER}",
        "settings": {"stt_model": s.listen.stt_model, "stt_device": s.listen.stt_device,
                     "stt_compute_type": s.listen.stt_compute_type, "wake_word": s.listen.wake_word,
                     "preset": s.preset, "block_ms": s.audio.block_ms, "output_block_ms": s.audio.output_block_ms,
                     "tts_engines": s.tts.engines, "brain_backend": s.brain.backend},
        "parts": {"tts": tts, "llm": llm, "load_s": {k: round(v, 2) for k, v in loop.host.load_seconds.items()}},
        "cpu_percent_of_one_core": round(percent, 2), "cpu_seconds": round(cpu_s, 3),
        "cpu_percent_per_second": {"p50": round(_median(samples), 2), "max": round(max(samples), 2),
                                   "n": len(samples)} if samples else {},
        "memory_after_warmup": memory_ready, "memory_at_end": memory_end,
        "mic_blocks": blocks,
        "wake_detector_frames": ({"given": detector.frames, "run": detector.frames_run}
                                 if hasattr(detector, "frames_run") else None),
        "events_while_idle": dict(Counter(e.type for e in seen[counted_from:])),
        "goals": {"cpu_percent_of_one_core_max": CPU_GOAL_PERCENT, "rss_gb_max": RSS_GOAL_GB},
        "pass": {"cpu": percent <= CPU_GOAL_PERCENT, "rss": rss_gb <= RSS_GOAL_GB},
    }


def _median(values: list[float]) -> float:
    import statistics
    return statistics.median(values)


def format_text(r: dict[str, Any]) -> str:
    ok = {True: "meets", False: "MISSES"}
    ready, end = r["memory_after_warmup"], r["memory_at_end"]
    return "\n".join([
        f"Idle benchmark on {r['hardware']}: {r['seconds']:.0f} s of {r['audio'].split(' fed ')[1].split(',')[0]} "
        f"after a {r['load_s']:.1f} s start",
        f"  CPU  {r['cpu_percent_of_one_core']:6.2f} % of one core (busiest second "
        f"{r['cpu_percent_per_second'].get('max', 0):.1f} %); {ok[r['pass']['cpu']]} the goal of "
        f"<= {r['goals']['cpu_percent_of_one_core_max']:g} %",
        f"  RSS  {ready['rss_mb']:6.0f} MB after warm-up, {end['rss_mb']:.0f} MB at the end "
        f"(USS {ready['uss_mb']:.0f} / {end['uss_mb']:.0f} MB, {len(ready['processes'])} processes); "
        f"{ok[r['pass']['rss']]} the goal of <= {r['goals']['rss_gb_max']:g} GB",
    ])


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to listen to silence (default 60)")
    parser.add_argument("--no-server", action="store_true",
                        help=f"use the audio server already in the environment (it must have {MIC} and {SPEAKER}) "
                             "instead of starting a private one")
    parser.add_argument("--room-noise", type=float, metavar="DBFS",
                        help="feed the microphone a room's steady pink noise at this RMS level (e.g. -50) instead of "
                             "digital silence (needs the private server)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")
    from jarvis import presets

    parser.add_argument("--preset", choices=tuple(presets.PRESETS),
                        help="listen with this performance preset (before any --set)")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="try a setting for this run only, e.g. --set audio.block_ms=10")


def main(args, settings) -> int:
    from jarvis.audio import devices
    from jarvis.errors import BadInput

    if args.seconds <= 0:
        raise BadInput("bad_seconds", "--seconds must be more than 0.")
    noise_db = getattr(args, "room_noise", None)
    if noise_db is not None and (args.no_server or not -120 <= noise_db <= 0):
        raise BadInput("bad_room_noise", "--room-noise takes a level from -120 to 0 dBFS (e.g. -50), and the private "
                                         "audio server (leave out --no-server).")
    from jarvis.bench.pipeline import apply_preset_and_overrides

    apply_preset_and_overrides(settings, args.preset, args.set)
    progress = lambda line: print(line, file=sys.stderr)  # noqa: E731
    server = None
    saved = dict(os.environ)
    if not args.no_server:
        from jarvis.bench.virtual_audio import VirtualAudio
        from jarvis.errors import NotAvailable
        try:
            server = VirtualAudio()
        except FileNotFoundError as exc:
            raise NotAvailable("pulseaudio_missing", f"{exc}. Or pass --no-server with an audio server that has "
                                                     f"devices {MIC} and {SPEAKER}.") from exc
        server.apply()
        devices.refresh()  # PortAudio listed the devices before this server existed
        progress(f"private audio server up in {server.startup_s:.2f} s")
    try:
        noise, heard = None, "digital silence"
        if noise_db is not None:
            # long enough for the models' start and the measurement; checked to be still playing at the end
            noise, heard = server.play_room_noise(args.seconds + 600, noise_db), f"pink noise at {noise_db:g} dBFS"
        result = measure(settings, args.seconds, progress, noise, heard)
    finally:
        if server is not None:
            server.stop()
            os.environ.clear()
            os.environ.update(saved)
            devices.refresh()
    print(format_text(result))
    if args.out:
        write_json(args.out, result)
    return 0
