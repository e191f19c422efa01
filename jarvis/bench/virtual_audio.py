"""A private PulseAudio server with a virtual microphone and speaker, for end-to-end tests and benchmarks.

Devices (PulseAudio names):
  ``jarvis_speaker``  null sink Jarvis plays to; record it from ``jarvis_speaker.monitor``.
  ``jarvis_micfeed``  null sink the tests play speech into.
  ``jarvis_mic``      remap source on ``jarvis_micfeed.monitor``: the microphone Jarvis records.

sounddevice sees them through ALSA (``libasound2-plugins``): the ``pulse`` and ``default`` devices follow
``PULSE_SOURCE`` / ``PULSE_SINK``, and this module also defines ALSA devices named ``jarvis_mic`` and
``jarvis_speaker`` so device selection by name can be tested.

Null sinks render in ~2 s blocks unless a client asks for low latency, so two ``pacat --latency-msec=10``
streams of silence keep both sinks busy; then capture callbacks arrive every block and playback runs
in real time. Start-up takes well under a second.

``echo_path()`` adds open speakers: what Jarvis plays comes back into its microphone (see ``EchoPath``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPEAKER = "jarvis_speaker"
MIC_FEED = "jarvis_micfeed"
MIC = "jarvis_mic"
RECORD_RATE = 48000
# How far ahead paplay queues a clip in the server. With 100 ms (about 50 ms queued) a paplay that the loaded
# machine did not schedule for a few tens of ms underran, and the server put ~20 ms of silence into the clip:
# speech played into the mic was then shifted by 20 ms after some point (a capture test failed in CI at
# correlation 0.63; an 80 ms SIGSTOP of paplay mid-clip makes the same gap every time). The clip is a file, so
# queuing it a second ahead costs nothing: playback starts as soon (data is there at once) and ends the same.
PLAY_BUFFER_MS = 2000

_SCRIPT = f"""\
load-module module-native-protocol-unix socket={{socket}} auth-anonymous=1
load-module module-null-sink sink_name={SPEAKER} rate={RECORD_RATE} channels=2 sink_properties=device.description=Jarvis_Speaker
load-module module-null-sink sink_name={MIC_FEED} rate={RECORD_RATE} channels=1 sink_properties=device.description=Jarvis_Mic_Feed
load-module module-remap-source source_name={MIC} master={MIC_FEED}.monitor channels=1 source_properties=device.description=Jarvis_Mic
set-default-sink {SPEAKER}
set-default-source {MIC}
"""

_ASOUNDRC = f"""\
pcm.{MIC} {{ type pulse device {MIC} hint {{ show on description "Jarvis virtual microphone" }} }}
pcm.{SPEAKER} {{ type pulse device {SPEAKER} hint {{ show on description "Jarvis virtual speaker" }} }}
"""


def end_processes(procs, timeout: float = 3.0) -> None:
    """Terminate every running process (None entries are skipped), then kill any still alive after ``timeout``."""
    procs = [p for p in procs if p is not None]
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class VirtualAudio:
    """Start with ``VirtualAudio()`` (or as a context manager); ``stop()`` ends every process it started."""

    def __init__(self, start: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="jarvis-pulse-"))
        self.socket = self.dir / "native"
        self.log = self.dir / "pulseaudio.log"
        self._procs: list[subprocess.Popen] = []
        self._daemon: subprocess.Popen | None = None
        self.startup_s = 0.0
        (self.dir / "runtime").mkdir(mode=0o700)
        (self.dir / "client.conf").write_text("autospawn = no\n")
        (self.dir / "asoundrc").write_text(_ASOUNDRC)
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_SOURCE": MIC,
            "PULSE_SINK": SPEAKER,
            "PULSE_CLIENTCONFIG": str(self.dir / "client.conf"),
            "PULSE_RUNTIME_PATH": str(self.dir / "runtime"),
            # The system ALSA config (which routes "default" to pulse when a server runs), plus our named devices.
            "ALSA_CONFIG_PATH": f"{_alsa_conf()}:{self.dir / 'asoundrc'}",
        }
        if start:
            self.start()

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> "VirtualAudio":
        if shutil.which("pulseaudio") is None:
            raise FileNotFoundError("pulseaudio is not installed (Debian: apt-get install pulseaudio pulseaudio-utils)")
        t0 = time.monotonic()
        script = self.dir / "script.pa"
        script.write_text(_SCRIPT.format(socket=self.socket))
        daemon_env = {**os.environ, **self.env, "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(self.dir / "runtime"),
                      "PULSE_STATE_PATH": str(self.dir / "state")}
        # No session bus: a second private server on the same bus would find org.PulseAudio1 taken and exit.
        for var in ("PULSE_SOURCE", "PULSE_SINK", "DBUS_SESSION_BUS_ADDRESS"):
            daemon_env.pop(var, None)
        # High priority and realtime threads where allowed, as a desktop's audio server runs (PulseAudio's and
        # PipeWire's defaults, through rtkit): at normal priority a loaded 2-core machine starved the server and
        # the player underflowed (15 underflows in 3 room tests beside another e2e test, against 4).
        self._daemon = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--system=false", "--exit-idle-time=-1",
             "--disallow-exit", "--disallow-module-loading=no", "--use-pid-file=no", "--realtime=yes",
             "--high-priority=yes", "--log-target=file:" + str(self.log), "--log-level=notice"],
            env=daemon_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        # Should this process die without stop() (SIGTERM, SIGKILL), a watchdog ends the server and removes
        # its folder, so no private PulseAudio outlives a killed benchmark or test run.
        subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                                      f"kill {self._daemon.pid} 2>/dev/null; rm -rf '{self.dir}'"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        try:
            self._wait_ready(t0 + 10)
            for sink in (SPEAKER, MIC_FEED):
                self._procs.append(self._popen(["pacat", "--playback", f"--device={sink}", "--latency-msec=10",
                                                "--format=s16le", f"--rate={RECORD_RATE}", "--channels=1",
                                                "/dev/zero"]))
            self._restart_sink_clocks(t0 + 10)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def kill_server(self) -> None:
        """Kill the PulseAudio daemon abruptly (a lost audio device, as clients see it)."""
        if self._daemon is not None and self._daemon.poll() is None:
            self._daemon.kill()
            self._daemon.wait()

    def restart_server(self) -> None:
        """Start the daemon again after ``kill_server()``: the device comes back, as clients see it."""
        end_processes(self._procs)  # the keep-alive streams died with the old server
        self._procs.clear()
        self.start()

    def stop(self) -> None:
        """End every process this started and delete its folder (recordings included); not restartable."""
        end_processes([*self._procs, self._daemon])
        self._procs.clear()
        self._daemon = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "VirtualAudio":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.poll() is None

    def apply(self) -> None:
        """Point this process at the server (call ``jarvis.audio.devices.refresh()`` afterwards)."""
        os.environ.update(self.env)

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """``os.environ`` plus what a child process needs to reach this server."""
        return {**os.environ, **self.env, **extra}

    @contextlib.contextmanager
    def plugged_in_speaker(self, name: str):
        """A speaker plugged in while Jarvis runs: a new sink, and the ALSA device ``name`` for it (what a fresh
        PortAudio lists; one started before does not see it). Unplugged on leaving."""
        rc = self.dir / "asoundrc"
        before = rc.read_text()
        module = self._load_module("module-null-sink", f"sink_name={name}")
        rc.write_text(before + f'pcm.{name} {{ type pulse device {name} hint {{ show on description "{name}" }} }}\n')
        try:
            yield name
        finally:
            rc.write_text(before)
            self._pactl("unload-module", str(module))

    # -- open speakers ------------------------------------------------------------------------------
    def echo_path(self, gain_db: float, latency_ms: int = 30, reverb: bool = True) -> "EchoPath":
        """Loop Jarvis's speaker back into its microphone, as laptop speakers would; ``remove()`` undoes it.

        ``module-loopback`` from ``jarvis_speaker.monitor`` (``latency_ms``: the speaker-to-microphone delay)
        whose stream volume is set to ``gain_db`` (as a linear factor: PulseAudio's volume is cubic, so
        -18 dB is about 50 %). PulseAudio has no reverb of its own, so with ``reverb`` (and Debian's
        ``swh-plugins`` installed) the loop goes through ``module-ladspa-sink`` running SWH's GVerb as a
        small furnished room (6 m, RT60 0.4 s; the direct sound at the set gain, early reflections -10 dB,
        tail -16 dB) into the mic feed. Without the plugin the path is dry and ``EchoPath.reverb`` is False.
        """
        modules: list[int] = []
        sink = MIC_FEED
        try:
            if reverb and _ladspa_plugin(ROOM_REVERB["plugin"]):
                modules.append(self._load_module(
                    "module-ladspa-sink", f"sink_name={ROOM_SINK}", f"master={MIC_FEED}",
                    f"plugin={ROOM_REVERB['plugin']}", f"label={ROOM_REVERB['label']}",
                    f"control={ROOM_REVERB['control']}", "input_ladspaport_map=Input",
                    "output_ladspaport_map='Left output,Right output'", "channels=2"))
                sink = ROOM_SINK
            modules.append(self._load_module("module-loopback", f"source={SPEAKER}.monitor", f"sink={sink}",
                                             f"latency_msec={int(latency_ms)}", "adjust_time=0", "source_dont_move=true",
                                             "sink_dont_move=true"))
            path = EchoPath(self, float(gain_db), int(latency_ms), sink == ROOM_SINK, modules)
            stream = path.sink_input()
            # A linear factor, not "-18dB": pactl would read a leading minus as an option.
            self._pactl("set-sink-input-volume", str(stream["index"]), f"{10 ** (gain_db / 20):.6f}")
            return path
        except BaseException:
            for module in reversed(modules):
                self._pactl("unload-module", str(module))
            raise

    def _load_module(self, name: str, *args: str) -> int:
        return int(self._pactl("load-module", name, *args).stdout.strip())

    def pactl_json(self, *args: str):
        """``pactl --format=json ARGS`` parsed (PulseAudio 16+)."""
        return json.loads(self._pactl("--format=json", *args).stdout)

    # -- test helpers -----------------------------------------------------------------------------
    def paplay(self, wav_path: str | Path, device: str = MIC_FEED, block: bool = True) -> subprocess.Popen:
        """Play a WAV file into a sink, queued up to ``PLAY_BUFFER_MS`` ahead: see there."""
        proc = self._popen(["paplay", f"--device={device}", f"--latency-msec={PLAY_BUFFER_MS}", str(wav_path)])
        if block:
            proc.wait(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"paplay {wav_path} failed with exit code {proc.returncode}")
        else:
            self._procs = [p for p in self._procs if p.poll() is None] + [proc]
        return proc

    def play_into_mic(self, wav_path: str | Path, block: bool = True) -> subprocess.Popen:
        """Play a WAV into the virtual microphone (what a user would say)."""
        return self.paplay(wav_path, MIC_FEED, block)

    def play_room_noise(self, seconds: float, dbfs: float, kind: str = "pink") -> subprocess.Popen:
        """Feed the virtual microphone ``seconds`` of steady noise at ``dbfs`` RMS (a room's hum and hiss as a
        microphone hears it), in the background; the returned process ends when it has played."""
        rate = 16000
        samples = steady_noise(kind, int(seconds * rate), np.random.default_rng(0)) * 10 ** (dbfs / 20)
        path = Path(tempfile.mkstemp(suffix=".wav", dir=self.dir)[1])
        _write_wav(path, samples, rate)
        return self.paplay(path, MIC_FEED, block=False)

    def record_speaker(self, path: str | Path | None = None) -> "Recording":
        """Start recording what Jarvis plays; ``stop()`` (or leaving the ``with``) returns the samples."""
        path = Path(path) if path else Path(tempfile.mkstemp(suffix=".wav", dir=self.dir)[1])
        return Recording(self, f"{SPEAKER}.monitor", path)

    def record_mic(self, path: str | Path | None = None) -> "Recording":
        """Record the virtual microphone itself (to check what the tests fed in)."""
        path = Path(path) if path else Path(tempfile.mkstemp(suffix=".wav", dir=self.dir)[1])
        return Recording(self, MIC, path)

    def _popen(self, cmd: list[str]) -> subprocess.Popen:
        with open(self.dir / "clients.log", "ab") as log:  # a file, not a pipe nobody reads
            return subprocess.Popen(cmd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log)

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with code {self._daemon.returncode}: {self._log_tail()}")
            if self.socket.exists():
                try:
                    self._pactl("info")
                    return
                except subprocess.CalledProcessError:
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"pulseaudio did not start within 10 s: {self._log_tail()}")

    def _restart_sink_clocks(self, deadline: float) -> None:
        """Wait for the keep-alive streams, then suspend + resume each sink.

        A fresh null sink sleeps its first ~2 s block before it notices a low-latency client; resuming
        restarts its timer at the new latency, so the devices are real-time at once (no 2 s warm-up).
        """
        while time.monotonic() < deadline:
            inputs = self._pactl("list", "short", "sink-inputs").stdout.count("\n")
            if inputs >= 2:
                break
            if any(p.poll() is not None for p in self._procs):
                raise RuntimeError("pacat keep-alive stream exited: "
                                   + (self.dir / "clients.log").read_text(errors="replace")[-300:])
            time.sleep(0.01)
        for sink in (SPEAKER, MIC_FEED):
            self._pactl("suspend-sink", sink, "1")
            self._pactl("suspend-sink", sink, "0")

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=5, check=True)

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text().strip().splitlines()[-5:])
        except OSError:
            return "(no log)"


ROOM_SINK = "jarvis_room"
# SWH GVerb: room size (m), RT60 (s), damping, input bandwidth, dry, early reflections, tail (dB).
ROOM_REVERB = {"plugin": "gverb_1216", "label": "gverb", "control": "6,0.4,0.5,0.75,0,-10,-16"}


@dataclass
class EchoPath:
    """One speaker-to-microphone path on a ``VirtualAudio`` (from ``echo_path()``)."""
    audio: VirtualAudio
    gain_db: float
    latency_ms: int
    reverb: bool                     # True when the room reverb is in the path
    modules: list[int] = field(default_factory=list)

    def sink_input(self) -> dict:
        """The loopback's playback stream (pactl's JSON)."""
        loop = self.modules[-1]
        for stream in self.audio.pactl_json("list", "sink-inputs"):
            if int(stream.get("owner_module", -1)) == loop:
                return stream
        raise RuntimeError("the echo loopback has no playback stream")

    def reported_latency_ms(self) -> float | None:
        """PulseAudio's own figure for the loop: its capture plus its playback stream latency."""
        loop, total = self.modules[-1], 0.0
        try:
            for kind in ("sink-inputs", "source-outputs"):
                stream = next(s for s in self.audio.pactl_json("list", kind) if int(s.get("owner_module", -1)) == loop)
                total += float(str(stream.get("buffer_latency_usec", 0))) + float(str(stream.get("sink_latency_usec", stream.get("source_latency_usec", 0))))
        except (StopIteration, ValueError, subprocess.CalledProcessError):
            return None
        return round(total / 1000, 1)

    def describe(self) -> dict:
        return {"gain_db": self.gain_db, "latency_ms": self.latency_ms,
                "reverb": f"SWH GVerb {ROOM_REVERB['control']}" if self.reverb else None}

    def measure(self) -> dict:
        """Measure the path on the running server (nothing else should play meanwhile).

        Gain: a 1 kHz tone played to the speaker, its steady level in the microphone against the speaker
        monitor (the reverb's build-up on a steady tone counts in it: about +2 dB). Delay: noise bursts
        played through a ``module-combine-sink`` into both the speaker and the mic feed at once, so the
        microphone recording holds each burst directly and, later, its echo: the delay is the distance
        between the two correlation peaks (one recording, one clock).
        """
        a, rate = self.audio, RECORD_RATE
        t = np.arange(rate) / rate
        tone = np.concatenate([np.zeros(rate // 2), 0.35 * np.sin(2 * np.pi * 1000 * t), np.zeros(rate // 2)])
        _write_wav(a.dir / "probe-tone.wav", tone, rate)
        with a.record_mic() as mic, a.record_speaker() as monitor:
            time.sleep(0.2)
            a.paplay(a.dir / "probe-tone.wav", SPEAKER)
            time.sleep(0.3)
        gain = _steady_db(mic.samples) - _steady_db(monitor.samples)
        burst = np.random.default_rng(0).standard_normal(rate // 100) * 0.3
        clicks = np.zeros(rate * 2)
        for k in range(4):
            clicks[rate // 4 + k * rate * 2 // 5:][: burst.size] = burst
        _write_wav(a.dir / "probe-clicks.wav", clicks, rate)
        combine = a._load_module("module-combine-sink", "sink_name=jarvis_probe", f"slaves={SPEAKER},{MIC_FEED}")
        try:
            time.sleep(0.3)
            with a.record_mic() as mic:
                time.sleep(0.2)
                a.paplay(a.dir / "probe-clicks.wav", "jarvis_probe")
                time.sleep(0.4)
        finally:
            a._pactl("unload-module", str(combine))
        return {"gain_db": round(float(gain), 2), "delay_ms": _echo_delay_ms(mic.samples, burst, rate),
                "pulseaudio_latency_ms": self.reported_latency_ms()}

    def remove(self) -> None:
        if self.audio.running:
            for module in reversed(self.modules):
                self.audio._pactl("unload-module", str(module))
        self.modules = []


def steady_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS steady noise: ``white``, ``pink`` (power falling as 1/f, like most rooms) or
    ``brown`` (1/f^2, a fan's rumble)."""
    if kind not in ("white", "pink", "brown"):
        raise ValueError(f"unknown noise {kind!r}: white, pink or brown")
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    shaped = np.fft.irfft(spectrum / (np.sqrt(f) if kind == "pink" else f), n)
    return shaped / np.sqrt(np.mean(shaped ** 2))


def _steady_db(samples: np.ndarray) -> float:
    """Level (dBFS) of the loud steady part: the median RMS of the 10 ms windows above half the peak RMS."""
    win = RECORD_RATE // 100
    n = len(samples) // win
    rms = np.sqrt(np.mean(samples[: n * win].reshape(n, win) ** 2, axis=1)) if n else np.zeros(1)
    return float(20 * np.log10(max(np.median(rms[rms >= rms.max() / 2]), 1e-9)))


def _echo_delay_ms(samples: np.ndarray, burst: np.ndarray, rate: int) -> float | None:
    """Median distance (ms) from each direct burst to its echo (the strongest peak 5-300 ms later)."""
    corr = np.abs(np.correlate(samples, burst, mode="valid"))
    delays, start = [], 0
    while True:
        above = np.flatnonzero(corr[start:] > corr.max() * 0.5)
        if not above.size:
            break
        direct = start + above[0]
        direct += int(np.argmax(corr[direct: direct + rate // 200]))       # the peak of this burst
        lo, hi = direct + rate // 200, direct + int(0.3 * rate)
        if hi > corr.size:
            break
        delays.append((lo + int(np.argmax(corr[lo:hi])) - direct) / rate * 1000)
        start = direct + int(0.35 * rate)
    return round(float(np.median(delays)), 1) if delays else None


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    import wave
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _ladspa_plugin(name: str) -> bool:
    folders = os.environ.get("LADSPA_PATH", "/usr/lib/ladspa:/usr/local/lib/ladspa:/usr/lib/x86_64-linux-gnu/ladspa")
    return any((Path(folder) / f"{name}.so").exists() for folder in folders.split(":") if folder)


class Recording:
    """``parec`` of one source into a WAV (48 kHz mono s16) until ``stop()``."""

    def __init__(self, audio: VirtualAudio, source: str, path: Path):
        self.path = path
        self.rate = RECORD_RATE
        self.samples: np.ndarray | None = None
        self._proc = audio._popen(["parec", f"--device={source}", "--latency-msec=10", "--file-format=wav",
                                   "--format=s16le", f"--rate={RECORD_RATE}", "--channels=1", str(path)])
        self.started = time.monotonic()

    def stop(self) -> np.ndarray:
        """Stop recording; returns float32 samples at ``self.rate`` (also kept in ``self.samples``)."""
        if self.samples is None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self.samples = _read_wav(self.path)
        return self.samples

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _alsa_conf() -> str:
    for candidate in ("/usr/share/alsa/alsa.conf", "/etc/alsa/alsa.conf"):
        if Path(candidate).exists():
            return candidate
    return "/usr/share/alsa/alsa.conf"


def _read_wav(path: Path) -> np.ndarray:
    """Read a parec WAV; parec leaves the header's sizes unset when interrupted, so trust the file size."""
    data = Path(path).read_bytes()
    idx = data.find(b"data")
    if idx < 0:
        return np.zeros(0, np.float32)
    pcm = data[idx + 8:]
    pcm = pcm[: len(pcm) // 2 * 2]
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
