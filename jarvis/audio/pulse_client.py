"""Jarvis's own PulseAudio client settings: the user's ``client.conf``, with shared memory off.

Why: ALSA's pulse plugin (how PortAudio reaches PulseAudio) keeps a partly read record fragment "acquired"
between two reads. When the audio server dies, libpulse's main loop thread frees the server's shared memory and
waits, holding its lock, until that fragment is released; PortAudio's capture thread waits for the same lock to
release it. Neither goes on: the microphone never closes and PortAudio can never be restarted, so Jarvis never
hears again (gdb: ``pa_memimport_free`` → ``pa_semaphore_wait`` against ``snd_pcm_status`` → ``pa_mutex_lock``).
Without shared memory the audio comes over the socket, nothing is imported and nothing waits; it costs a copy of
the microphone's and the reply's few kB/s. Only Jarvis's process (and its children) read this file: the user's
own settings (server, cookie, sink, source…) are included as they are.
"""
from __future__ import annotations

import os
from pathlib import Path

from jarvis.storage import atomic_write_bytes

HEADER = "# Written by Jarvis (jarvis.audio.pulse_client): your PulseAudio client settings, shared memory off."
FILE_NAME = "pulse-client.conf"
GLOBAL_FILE = Path("/etc/pulse/client.conf")


def users_file(environ=os.environ, home: Path | None = None) -> Path | None:
    """The client.conf libpulse would read: ``$PULSE_CLIENTCONFIG``, else ``$PULSE_CONFIG_PATH/client.conf``,
    ``~/.pulse/client.conf`` or ``~/.config/pulse/client.conf``, else ``/etc/pulse/client.conf``."""
    named = environ.get("PULSE_CLIENTCONFIG")
    if named:
        return Path(named)
    if environ.get("PULSE_CONFIG_PATH"):
        local = [Path(environ["PULSE_CONFIG_PATH"]) / "client.conf"]
    else:
        home = home or Path.home()
        local = [home / ".pulse" / "client.conf", home / ".config" / "pulse" / "client.conf"]
    return next((path for path in [*local, GLOBAL_FILE] if path.is_file()), None)


def client_conf(user_file: Path | None) -> str:
    """Settings that read ``user_file`` and its ``.d`` folder as libpulse would, then turn shared memory off.
    A file Jarvis wrote (a parent Jarvis process set it) is kept as it is."""
    found = user_file is not None and user_file.is_file()
    if found and (text := user_file.read_text(errors="replace")).startswith(HEADER):
        return text
    lines = [HEADER]
    if found:
        lines.append(f".include {user_file.resolve()}")
        extra = user_file.with_name(user_file.name + ".d")
        if extra.is_dir():
            lines += [f".include {path.resolve()}" for path in sorted(extra.glob("*.conf")) if path.is_file()]
    lines.append("enable-shm = no")
    return "\n".join(lines) + "\n"


def use_without_shared_memory(folder: Path, environ=os.environ) -> Path | None:
    """Point this process's libpulse at Jarvis's settings (before PortAudio starts: libpulse reads them as each
    connection is made); ``None`` when the file cannot be written (nothing changes)."""
    target = folder / FILE_NAME
    text = client_conf(users_file(environ))
    try:
        if not target.is_file() or target.read_text(errors="replace") != text:
            atomic_write_bytes(target, text.encode())   # another Jarvis process may be reading it
    except OSError:
        return None
    environ["PULSE_CLIENTCONFIG"] = str(target)
    return target
