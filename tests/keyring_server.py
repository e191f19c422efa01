"""A private, real Secret Service for tests: its own D-Bus session bus + GNOME Keyring, unlocked.

Nothing touches the user's keyring or session bus: the bus listens on a socket in a temporary folder,
and gnome-keyring-daemon runs with a temporary HOME / XDG_* folders, so its ``login`` keyring (created
on first start with ``PASSWORD`` and unlocked by ``--unlock``) lives there and is deleted by ``stop()``.

``client_env`` is what a client process needs: ``DBUS_SESSION_BUS_ADDRESS`` (Python's ``keyring`` then
selects its SecretService backend) and a temporary ``XDG_CONFIG_HOME`` (so no ``keyringrc.cfg`` of the
user's can force another backend); ``PYTHON_KEYRING_BACKEND`` must be unset. Debian packages:
``dbus-daemon`` (``dbus-daemon``) and ``gnome-keyring`` (``gnome-keyring-daemon``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from jarvis.bench.virtual_audio import end_processes

PASSWORD = "jarvis-test-keyring"
# A session bus without service directories: nothing is D-Bus-activated. (The stock session config
# would start a second gnome-keyring-daemon from /usr/share/dbus-1/services when a client calls the
# Secret Service before ours has claimed its name, and that one would outlive the bus.)
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
SECRETS_BUS_NAME = "org.freedesktop.secrets"


class PrivateKeyring:
    """Start with ``PrivateKeyring()`` (or as a context manager); ``stop()`` ends both daemons."""

    def __init__(self, start: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jarvis-kr-"))  # short: unix socket paths max ~107 bytes
        self.home = self.dir / "home"
        self.runtime = self.dir / "run"
        self.home.mkdir()
        self.runtime.mkdir(mode=0o700)
        self.log = self.dir / "daemons.log"
        self.address = ""
        self.startup_s = 0.0
        self._bus: subprocess.Popen | None = None
        self._keyring: subprocess.Popen | None = None
        self.env = {
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
        }
        if start:
            self.start()

    def start(self) -> "PrivateKeyring":
        for tool, package in (("dbus-daemon", "dbus-daemon"), ("gnome-keyring-daemon", "gnome-keyring")):
            if shutil.which(tool) is None:
                raise FileNotFoundError(f"{tool} is not installed (Debian: apt-get install {package})")
        t0 = time.monotonic()
        base = {**os.environ, **self.env}
        for var in ("DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "PYTHON_KEYRING_BACKEND"):
            base.pop(var, None)
        try:
            config = self.dir / "bus.conf"
            config.write_text(_BUS_CONFIG.format(socket=self.runtime / "bus"))
            with open(self.log, "ab") as log:
                self._bus = subprocess.Popen(
                    ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
                    env=base, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
                self.address = self._bus.stdout.readline().decode().strip()  # printed once it listens
                if not self.address:
                    raise RuntimeError(f"dbus-daemon did not start: {self._log_tail()}")
                self.env["DBUS_SESSION_BUS_ADDRESS"] = self.address
                self._keyring = subprocess.Popen(
                    ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                    env={**base, **self.env}, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True)
            self._keyring.stdin.write(PASSWORD.encode())  # --unlock reads the login password from stdin
            self._keyring.stdin.close()
            self._wait_ready(t0 + 15)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """End both daemons and delete the folder (the keyring file included)."""
        end_processes((self._keyring, self._bus))
        for proc in (self._keyring, self._bus):
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
        self._keyring = self._bus = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrivateKeyring":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self._bus, self._keyring))

    @property
    def client_env(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address, "XDG_CONFIG_HOME": self.env["XDG_CONFIG_HOME"]}

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """``os.environ`` plus what a child process needs to use this keyring (and no backend override)."""
        env = {**os.environ, **self.client_env, **extra}
        if "PYTHON_KEYRING_BACKEND" not in extra:
            env.pop("PYTHON_KEYRING_BACKEND", None)
        return env

    def _wait_ready(self, deadline: float) -> None:
        """Until the Secret Service answers and its default collection (the login keyring) exists."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        service = DBusAddress("/org/freedesktop/secrets", bus_name=SECRETS_BUS_NAME,
                              interface="org.freedesktop.Secret.Service")
        last = "no answer"
        with open_dbus_connection(bus=self.address) as conn:
            while time.monotonic() < deadline:
                if self._keyring.poll() is not None:
                    raise RuntimeError(f"gnome-keyring-daemon exited with code {self._keyring.returncode}: "
                                       f"{self._log_tail()}")
                try:
                    (path,) = unwrap_msg(conn.send_and_get_reply(
                        new_method_call(service, "ReadAlias", "s", ("default",)), timeout=2))
                    if path != "/":
                        return
                    last = "no default collection yet"
                except DBusErrorResponse as exc:
                    last = f"{exc.name}"
                time.sleep(0.05)
        raise RuntimeError(f"the Secret Service did not come up within 15 s ({last}): {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-400:].strip()
        except OSError:
            return ""
