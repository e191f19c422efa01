"""The `jarvis` command line. Every user-facing failure is one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

import jarvis
from jarvis import config, events
from jarvis.errors import BadInput, JarvisError, NotAvailable

log = logging.getLogger(__name__)

HEADLESS_NOTICE = ("Jarvis is running headless: there is no screen for the tray app here. "
                   "Say \"Jarvis\" and a command; press Ctrl+C to stop.")


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line like any other error (argparse prints the usage and then the error): what is
    wrong, and where the command's options are listed. Subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"error: {message[:1].upper()}{message[1:]}. Options: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jarvis", description="Jarvis, an offline desktop voice assistant.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--version", action="version", version=f"jarvis {jarvis.__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="load the models, speak, transcribe, identify and answer once; PASS/FAIL per step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("listen", help="run the voice loop headless")
    p.add_argument("--input-device", metavar="S", help="microphone: name substring (default: system default)")
    p.add_argument("--output-device", metavar="S", help="speaker: name substring (default: system default)")
    p.add_argument("--events", choices=["jsonl"], help="print one JSON object per event on stdout")

    sub.add_parser("tray", help="the tray app (what `jarvis` starts when there is a screen)")

    p = sub.add_parser("say", help="speak TEXT, or write it to a WAV")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--engine", metavar="NAME",
                   help="try this TTS engine first; the rest of the settings chain stays as fallback")
    p.add_argument("--out", metavar="FILE.wav", help="write a WAV instead of playing")
    p.add_argument("--output-device", metavar="S", help="speaker: name substring")
    p.add_argument("--csm-model", metavar="ID_OR_FOLDER", help="CSM model: Hugging Face id or folder")
    p.add_argument("--voice", metavar="NAME", help="CSM voice from `jarvis voices` (a cloned reference clip)")
    p.add_argument("--download", action="store_true", help="let CSM download its weights if they are missing")
    p.add_argument("--max-chars", metavar="N", type=int,
                   help="refuse text longer than N characters (default: tts.max_say_chars, 5000)")
    p.add_argument("--seed", metavar="N", type=int,
                   help="the same audio every time: seed the voices' sampling noise (0 or more)")

    from jarvis import ask
    ask.add_arguments(sub.add_parser("ask", help="answer TEXT (skills, then the LLM) and print it; --say speaks it"))

    p = sub.add_parser("bench", help="measure speed and memory (see benchmarks/)")
    bench = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    from jarvis.bench import tts as bench_tts
    bench_tts.add_arguments(bench.add_parser("tts", help="CSM: first audio, RTF, frames/s, peak memory"))
    from jarvis.bench import brain as bench_brain
    bench_brain.add_arguments(bench.add_parser("brain", help="LLM: time to first token and to first spoken audio"))
    from jarvis.bench import components as bench_components
    bench_components.add_arguments(bench.add_parser("components", help="VAD, wake word, speaker ID, STT and TTS "
                                                                       "one at a time"))
    from jarvis.bench import idle as bench_idle
    bench_idle.add_arguments(bench.add_parser("idle", help="CPU and memory while listening to silence"))
    from jarvis.bench import pipeline as bench_pipeline
    bench_pipeline.add_arguments(bench.add_parser("pipeline", help="spoken turns through the voice loop on virtual "
                                                                   "devices: per-stage latency, peer comparison"))
    from jarvis.bench import room as bench_room
    bench_room.add_arguments(bench.add_parser("room", help="open speakers, noise, barge-ins and follow-ups through "
                                                           "the voice loop on virtual devices"))
    from jarvis.bench import aec as bench_aec
    bench_aec.add_arguments(bench.add_parser("aec", help="echo cancellers compared: ERLE, double talk, wake word, "
                                                         "Whisper, CPU"))
    from jarvis.bench import false_wakes as bench_false_wakes
    bench_false_wakes.add_arguments(bench.add_parser("false-wakes", help="the wake word on an hour or more of "
                                                                         "speech without it, and the voices it "
                                                                         "wakes on"))
    from jarvis.bench import serve as bench_serve
    bench_serve.add_arguments(bench.add_parser("serve", help="the speech server: concurrent clients (first audio "
                                                            "byte, throughput, RSS) and a table of bad requests"))

    p = sub.add_parser("voices", help="list, add or remove CSM voices (reference clip + transcript)")
    p.add_argument("action", nargs="?", default="list", choices=["list", "add", "remove"])
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("clip", nargs="?", metavar="CLIP.wav")
    p.add_argument("--text", metavar="TRANSCRIPT", help="what is said in the clip (for add)")

    p = sub.add_parser("transcribe", help="print the transcript of a 16 kHz mono WAV")
    p.add_argument("wav", metavar="FILE.wav")

    p = sub.add_parser("enroll", help="enroll a voice signature from WAVs (or --mic)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("wavs", metavar="FILE.wav", nargs="*")
    p.add_argument("--mic", action="store_true", help="record prompted phrases from the microphone")
    p.add_argument("--input-device", metavar="S", help="microphone for --mic")

    p = sub.add_parser("speakers", help="list, remove or rename enrolled voices")
    p.add_argument("action", nargs="?", default="list", choices=["list", "remove", "rename"])
    p.add_argument("names", nargs="*", metavar="NAME")

    p = sub.add_parser("identify", help="name the enrolled speaker in a WAV")
    p.add_argument("wav", metavar="FILE.wav")

    p = sub.add_parser("devices", help="the audio devices PortAudio sees now (--json for programs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("doctor", help="audio devices, compute devices, models, keyring, versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("serve", help="serve the warmed voices and Whisper to other apps (OpenAI speech API), "
                                     "loopback and token by default")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8844, help="port (default 8844)")
    p.add_argument("--show-token", action="store_true", help="print the bearer token clients send, and exit")
    p.add_argument("--wyoming", action="store_true", help="also serve Home Assistant's Wyoming protocol: TTS on "
                                                          "port 10200, speech recognition on 10300 (no auth in the "
                                                          "protocol: loopback unless --host says otherwise)")

    p = sub.add_parser("secret", help="API keys in the OS keyring: set NAME (value from stdin or a prompt), "
                                      "delete NAME, status")
    # No argparse choices: its error would echo what was typed, which may be a key.
    p.add_argument("action", metavar="{set,delete,status}")
    p.add_argument("name", nargs="?", metavar="NAME", help="e.g. openai_api_key")
    return parser


def run(argv: list[str]) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "secret":  # `secret set NAME VALUE`: argparse would echo the key back
        print(f"error: {SECRET_ON_ARGV.format(name=_shown(args.name) if args.name else 'NAME')}", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    settings = config.load()
    for line in settings.notice.splitlines():  # one line per problem found in the settings file
        print(f"warning: {line}", file=sys.stderr)
    if args.self_test:
        from jarvis import selftest
        return selftest.main(settings)
    command = args.command or "listen"
    if args.command is None:
        print(HEADLESS_NOTICE, file=sys.stderr)
        args = parser.parse_args(["listen"])
    try:
        return COMMANDS[command](args, settings)
    except JarvisError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        log.info("command %s failed: %s", command, exc.code)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


# -- listen -------------------------------------------------------------------------------------
def cmd_listen(args, settings) -> int:
    from jarvis.pipeline import VoiceLoop

    if args.input_device is not None:
        settings.audio.input_device = args.input_device
    if args.output_device is not None:
        settings.audio.output_device = args.output_device
    bus = events.EventBus()
    if args.events == "jsonl":
        bus.subscribe(_jsonl_printer())
    else:
        bus.subscribe(_human_printer)

    stop = threading.Event()
    received: list[int] = []   # the signals that asked to stop, said in the log once stopping
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: (received.append(signum), stop.set()))
    loop = VoiceLoop(settings, bus)
    failure: list[BaseException] = []

    def start() -> None:
        try:
            loop.start()
        except BaseException as exc:  # reported on the main thread
            failure.append(exc)
            stop.set()

    starter = threading.Thread(target=start, name="start", daemon=True)
    starter.start()
    while not stop.wait(0.2):
        if loop.ended:
            break
    if received:
        log.info("stopping: %s received", signal.Signals(received[0]).name)
    elif loop.ended:
        log.warning("stopping: the voice loop ended")
    _exit_soon_after(4.5)  # SIGINT/SIGTERM must end the process within 5 s whatever hangs
    loop.stop()
    if failure:
        exc = failure[0]
        if isinstance(exc, JarvisError):
            if args.events == "jsonl":  # the human printer would repeat the line run() prints
                bus.emit(events.Error(code=exc.code, message=exc.message))
            raise exc
        raise exc
    return 0


EXIT_HUNG = 4  # the shutdown hung and was cut short: not a clean exit (2 is bad input, 3 something missing)


def _exit_soon_after(seconds: float) -> None:
    def force() -> None:
        waiting = sorted(t.name for t in threading.enumerate() if t is not threading.current_thread()
                         and not t.daemon and t.is_alive())
        line = (f"shutdown hung for {seconds:g} s and was cut short (still running: "
                f"{', '.join(waiting) or 'daemon threads only'}); please report it with the log (jarvis doctor).")
        log.error("%s", line)
        print(f"error: {line}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(EXIT_HUNG)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


def _jsonl_printer():
    """Events go to the real stdout; everything else printed (by us or libraries) goes to stderr."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    lock = threading.Lock()

    def emit(event: events.Event) -> None:
        with lock:
            out.write(event.to_json() + "\n")
            out.flush()

    return emit


def _human_printer(event: events.Event) -> None:
    text = {
        "ready": "Listening. Say \"Jarvis\" and a command.",
        "wake": "(wake word)",
        "transcript": f"You said: {getattr(event, 'text', '')}",
        "speaker": f"Speaker: {getattr(event, 'name', '')} ({getattr(event, 'score', 0):.2f})",
        "reply": f"Jarvis: {getattr(event, 'text', '')}",
        "degraded": f"warning: {getattr(event, 'engine', '')} unavailable: {getattr(event, 'reason', '')}",
        "error": f"error: {getattr(event, 'message', '')}",
        "audio_back": f"The microphone is back ({getattr(event, 'device', '')}). Listening again.",
    }.get(event.type)
    if text:
        print(text, file=sys.stderr if event.type in ("degraded", "error") else sys.stdout, flush=True)


# -- say ----------------------------------------------------------------------------------------
def cmd_say(args, settings) -> int:
    import numpy as np

    from jarvis.speak.chain import TtsChain
    from jarvis.speak.registry import create

    text = args.text.strip()
    if not text:
        raise BadInput("empty_text", "Nothing to say: give some text, e.g. jarvis say \"Hello\".")
    tts = settings.tts
    limit = args.max_chars if args.max_chars is not None else tts.max_say_chars
    if limit < 1:
        raise BadInput("bad_args", "--max-chars must be at least 1, e.g. --max-chars 20000.")
    if len(text) > limit:
        raise BadInput("text_too_long", f"The text is {len(text):,} characters; jarvis say speaks at most {limit:,}. "
                                        f"To say it anyway, add --max-chars {len(text)}.")
    if args.out:
        from jarvis.audio.wav import check_writable
        check_writable(args.out)  # before any engine loads or speaks
    if args.csm_model:
        tts.csm.model = args.csm_model
    if args.voice is not None:
        tts.csm.voice = args.voice
    if args.download:
        tts.csm.allow_download = True
    names = list(tts.engines)
    if args.engine:
        names = [args.engine] + [n for n in names if n != args.engine.strip().lower()]
    engines = [create(name, tts) for name in names]  # unknown names fail here, before loading
    if args.seed is not None:
        from jarvis.speak.seed import seed_voices
        seed_voices(args.seed, torch_too="csm" in [n.strip().lower() for n in names])
    player = None
    if not args.out:
        from jarvis.audio.devices import resolve_output
        from jarvis.audio.player import Player

        device = args.output_device if args.output_device is not None else settings.audio.output_device
        resolve_output(device)
        player = Player(device)
    bus = events.EventBus()
    bus.subscribe(_human_printer)
    chain = TtsChain(engines, bus)
    chain.load()
    try:
        if args.out:
            from jarvis.audio.resample import resample
            from jarvis.audio.wav import write_wav

            pieces, out_rate = [], None
            for rate, chunk in chain.speak(text, None, progress=_say_progress):
                out_rate = out_rate or rate
                pieces.append(chunk if rate == out_rate else resample(chunk, rate, out_rate))
            if not pieces:
                raise JarvisError("tts_failed", "No engine could speak that. Run: jarvis doctor")
            write_wav(args.out, np.concatenate(pieces), out_rate)
            print(f"wrote {args.out} ({out_rate} Hz, {sum(map(len, pieces)) / out_rate:.2f} s)")
        else:
            player.play_stream(chain.speak(text, None, progress=_say_progress))
    finally:
        chain.close()
        if player is not None:
            player.close()
    return 0


PROGRESS_FROM = 4  # sentences: shorter texts are quick and need no progress line


def _say_progress(done: int, total: int) -> None:
    """"sentence 3 of 40" on stderr before each sentence of a long text (one line, rewritten, on a terminal)."""
    if total < PROGRESS_FROM:
        return
    tty = sys.stderr.isatty()
    line = f"speaking sentence {done} of {total}"
    print("\r" + line if tty else line, end="\n" if done == total or not tty else "", file=sys.stderr, flush=True)


# -- bench --------------------------------------------------------------------------------------
def cmd_bench(args, settings) -> int:
    if args.bench in ("brain", "pipeline", "components", "idle", "room", "false-wakes", "aec", "serve"):
        import importlib
        return importlib.import_module(f"jarvis.bench.{args.bench.replace('-', '_')}").main(args, settings)
    from jarvis.bench import tts
    return tts.main(args)


# -- voices -------------------------------------------------------------------------------------
def cmd_voices(args, settings) -> int:
    from jarvis.speak.csm.voices import find_voice, read_clip

    voices = settings.tts.voices
    if args.action == "list":
        if not voices:
            print("No voices yet. Add one: jarvis voices add NAME CLIP.wav --text \"what the clip says\"")
        for name in sorted(voices):
            entry = voices[name] if isinstance(voices[name], dict) else {}
            active = " (active)" if name == settings.tts.csm.voice else ""
            print(f"{name}{active}: {entry.get('clip', '?')} \"{entry.get('text', '')}\"")
        return 0
    name = (args.name or "").strip()
    if not name:
        raise BadInput("bad_voice", f"Give a voice name: jarvis voices {args.action} NAME")
    if args.action == "remove":
        find_voice(name, voices)
        del voices[name]
        if settings.tts.csm.voice == name:
            settings.tts.csm.voice = ""
        config.save(settings)
        print(f"removed voice {name}")
        return 0
    if not args.clip or not (args.text or "").strip():
        raise BadInput("bad_voice", f"Usage: jarvis voices add {name} CLIP.wav --text \"what the clip says\"")
    from pathlib import Path
    clip = Path(args.clip).expanduser().resolve()
    read_clip(clip, 24000)  # refuse missing, corrupt, silent or badly sized clips now
    voices[name] = {"clip": str(clip), "text": args.text.strip()}
    config.save(settings)
    print(f"added voice {name}; use it with: jarvis say --engine csm --voice {name} \"Hello\"")
    return 0


# -- serve ---------------------------------------------------------------------------------------
def cmd_serve(args, settings) -> int:
    from jarvis.serve import security, server

    if args.show_token:
        print(security.api_token(create=True))
        return 0
    server.check_address(args.host, args.port)
    print(f"Jarvis speech server: loading voices and Whisper, then http://{args.host}:{args.port}/v1 "
          "(token: jarvis serve --show-token). Ctrl-C stops it.", file=sys.stderr, flush=True)
    from jarvis.serve.wyoming_server import ASR_PORT, TTS_PORT

    return server.serve(settings, args.host, args.port, wyoming_ports=(TTS_PORT, ASR_PORT) if args.wyoming else None)


# -- transcribe / enroll / speakers / identify --------------------------------------------------
def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


def cmd_transcribe(args, settings) -> int:
    from jarvis.audio.wav import is_silence, read_speech_wav
    from jarvis.listen.stt import Transcriber

    samples = read_speech_wav(args.wav, warn=_warn)
    if is_silence(samples):  # the same test as enroll's
        raise BadInput("silent_audio", f"{args.wav} is silent; there is nothing to transcribe. "
                                       "Give a recording of someone speaking (check the microphone level).")
    print(Transcriber(settings.listen).transcribe(samples))
    return 0


def _speaker_parts(settings):
    from jarvis.speakers.encoder import SpeakerEncoder
    from jarvis.speakers.identify import Identifier
    from jarvis.speakers.store import SpeakerStore

    store, encoder = SpeakerStore(), SpeakerEncoder()
    return store, encoder, Identifier(store, encoder, settings.speakers.threshold)


def cmd_enroll(args, settings) -> int:
    from jarvis.speakers.enroll import enroll_from_mic, enroll_from_wavs

    if not args.wavs and not args.mic:
        raise BadInput("no_audio", "Give one or more WAV files (jarvis enroll NAME a.wav b.wav) or --mic.")
    if args.wavs and args.mic:
        raise BadInput("no_audio", "Use either WAV files or --mic, not both.")
    store, encoder, _ = _speaker_parts(settings)
    if args.mic:
        device = args.input_device if args.input_device is not None else settings.audio.input_device
        count = enroll_from_mic(args.name, store, encoder, device=device)
    else:
        count = enroll_from_wavs(args.name, args.wavs, store, encoder)
    print(f"enrolled {args.name.strip()}: {count} sample{'s' if count != 1 else ''} added")
    return 0


def cmd_speakers(args, settings) -> int:
    from jarvis.speakers.store import SpeakerStore

    store = SpeakerStore()
    if args.action == "list":
        if args.names:
            raise BadInput("bad_args", "jarvis speakers list takes no names.")
        names = store.names()
        for name in names:
            print(name)
        for problem in store.problems():
            print(f"warning: {problem}", file=sys.stderr)
        if not names:
            print("No speakers enrolled yet. Enroll with: jarvis enroll NAME FILE.wav", file=sys.stderr)
        return 0
    if args.action == "remove":
        if len(args.names) != 1:
            raise BadInput("bad_args", "Usage: jarvis speakers remove NAME")
        store.remove(args.names[0])
        print(f"removed {args.names[0]}")
        return 0
    if len(args.names) != 2:
        raise BadInput("bad_args", "Usage: jarvis speakers rename OLD NEW")
    store.rename(args.names[0], args.names[1])
    print(f"renamed {args.names[0]} to {args.names[1]}")
    return 0


def cmd_identify(args, settings) -> int:
    from jarvis.audio.wav import read_speech_wav

    samples = read_speech_wav(args.wav, warn=_warn)
    store, _, identifier = _speaker_parts(settings)
    for problem in store.problems():
        _warn(problem)
    if not store.names():  # before the encoder loads: there is nobody to compare with
        raise BadInput("nobody_enrolled", "Nobody is enrolled, so there is no one to identify. "
                                          "Enroll someone first: jarvis enroll NAME FILE.wav")
    match = identifier.identify(samples)
    print(f"{match.name} {match.score:.3f}")
    return 0


def cmd_devices(args, settings) -> int:
    from jarvis.audio.devices import list_devices

    found = list_devices()
    if args.json:
        print(json.dumps(found))
        return 0
    for d in found:
        kinds = "/".join(k for k in ("input", "output") if d[f"max_{k}_channels"] > 0)
        print(f"{d['name']} ({kinds}, {int(d['default_samplerate'])} Hz)")
    if not found:
        print("No audio devices found: check the audio server is running (jarvis doctor).")
    return 0


def cmd_doctor(args, settings) -> int:
    from jarvis import doctor
    from jarvis.speak.chain import TtsChain

    chain = TtsChain.from_settings(settings.tts, events.EventBus())
    try:
        chain.load()  # each engine really loads and speaks a word: "healthy" means it works now
    except JarvisError:
        pass  # every engine failed: status() says why
    report = doctor.collect(tts=chain.status(), settings=settings)
    chain.close()
    print(json.dumps(report, indent=2, default=str) if args.json else doctor.format_text(report))
    return 0


# -- secret -------------------------------------------------------------------------------------
SECRET_ON_ARGV = ("A key on the command line is refused (nothing was stored or shown; clear it from your shell "
                  "history). Pipe it on stdin: echo KEY | jarvis secret set {name}, or type it at the hidden prompt "
                  "of: jarvis secret set {name}")


def _shown(name: str) -> str:
    """``name`` when it looks like a secret's name; otherwise it may be a key typed in the wrong place."""
    import re
    return name if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}", name) else "NAME"


def cmd_secret(args, settings) -> int:
    """Values are read from stdin (piped) or a hidden prompt, never from argv, and never printed."""
    from jarvis import secrets

    if args.action not in ("set", "delete", "status"):
        raise BadInput("bad_args", "Usage: jarvis secret set NAME | delete NAME | status "
                                   "(what you typed is not shown: it may be a key).")
    if args.action == "status":
        if args.name:
            raise BadInput("bad_args", "Usage: jarvis secret status")
        status = secrets.backend_status()
        print(f"keyring: {status['name']} ({status['backend']})")
        secrets.check_keyring()  # no secure keyring: one line on stderr, exit 3
        for name, purpose in secrets.KNOWN.items():
            print(f"{name}: {'set' if secrets.get_secret(name) else 'not set'} - {purpose}")
        return 0
    name = (args.name or "").strip()
    if not name:
        raise BadInput("bad_args", f"Usage: jarvis secret {args.action} NAME  (known: {', '.join(secrets.KNOWN)})")
    if args.action == "delete":
        removed = secrets.delete_secret(name)
        print(f"deleted {_shown(name)}" if removed else f"{_shown(name)} was not set")
        return 0
    if name not in secrets.KNOWN:
        what = f"'{name}'" if _shown(name) == name else "(not shown: it may be a key)"
        raise BadInput("unknown_secret", f"Unknown secret name {what}. Known: {', '.join(secrets.KNOWN)}.")
    backend = secrets.check_keyring()  # fail before asking for the value
    if sys.stdin is not None and not sys.stdin.isatty():
        value = sys.stdin.read()
    else:
        import getpass
        value = getpass.getpass(f"{name} (input hidden): ")
    secrets.set_secret(name, value)
    print(f"stored {name} in the OS keyring ({backend})")
    return 0


def cmd_tray(args, settings) -> int:
    raise NotAvailable("no_display", "The tray app needs a desktop session (DISPLAY or WAYLAND_DISPLAY) and PySide6; "
                                     "without one, run: jarvis listen")


COMMANDS = {
    "tray": cmd_tray,
    "listen": cmd_listen, "say": cmd_say, "transcribe": cmd_transcribe, "enroll": cmd_enroll,
    "speakers": cmd_speakers, "identify": cmd_identify, "doctor": cmd_doctor, "voices": cmd_voices, "serve": cmd_serve,
    "devices": cmd_devices,
    "bench": cmd_bench,
    "secret": cmd_secret,
    "ask": lambda args, settings: __import__("jarvis.ask", fromlist=["run"]).run(args, settings),
}
