"""A private X display (Xvfb) with a system tray host (trayer): real windows and a real tray icon.

Start-up: Xvfb on a display number it picks, then trayer docked on it; ``QSystemTrayIcon`` then reports a
tray. ``screenshot(path)`` grabs the whole screen with ImageMagick's ``import``.
"""
from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class Desktop:
    def __init__(self, width: int = 1280, height: int = 800):
        for tool in ("Xvfb", "trayer", "xdotool"):
            if shutil.which(tool) is None:
                raise FileNotFoundError(f"{tool} is not installed (scripts/setup.sh --test installs it)")
        # -displayfd: Xvfb picks a free display and writes its number once it accepts connections (a socket
        # file can appear before the server listens, and a display number picked here could be taken meanwhile).
        # -noreset: by default the server resets when its last client leaves; an xdotool probe leaving while
        # trayer connects made trayer fail with "cannot open display" (3 of 100 starts on a loaded machine).
        read_fd, write_fd = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
                                      "-nolisten", "tcp", "-noreset"], pass_fds=(write_fd,),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        self.display = ":" + self._read_display(read_fd)
        self.env = dict(os.environ, DISPLAY=self.display)
        self._trayer_log = tempfile.TemporaryFile()
        self.trayer = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                                        "--width", "160", "--heighttype", "pixel", "--height", "32",
                                        "--transparent", "false", "--tint", "0x303030"],
                                       env=self.env, stdout=self._trayer_log, stderr=subprocess.STDOUT)
        try:
            self._wait_for(self._trayer_mapped, "trayer")
        except RuntimeError:
            self.stop()
            raise
        # Qt exits the process when its X server goes away, so the display must outlive this Python
        # process: a watchdog stops Xvfb and trayer once the test process has ended.
        subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 0.5; done; "
                                      f"kill {self.trayer.pid} {self.xvfb.pid} 2>/dev/null"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _read_display(self, read_fd: int, timeout: float = 30.0) -> str:
        with os.fdopen(read_fd, "rb") as pipe:
            ready, _, _ = select.select([pipe], [], [], timeout)
            number = pipe.readline().strip() if ready else b""
        if not number:
            self.xvfb.kill()
            raise RuntimeError(f"Xvfb did not start within {timeout:.0f} s (exit code {self.xvfb.wait()})")
        return number.decode()

    def _trayer_mapped(self) -> bool:
        if self.trayer.poll() is not None:
            self._trayer_log.seek(0)
            said = self._trayer_log.read().decode(errors="replace").strip()
            raise RuntimeError(f"trayer exited with code {self.trayer.returncode} on {self.display}: {said}")
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "trayer"], env=self.env,
                             capture_output=True, text=True)
        return bool(out.stdout.strip())

    @staticmethod
    def _wait_for(check, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not start within {timeout:.0f} s")

    def tray_icon_centre(self, app_class: str) -> tuple[int, int]:
        """Screen position of an application's icon docked in trayer (Qt reports no geometry for it)."""
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", app_class], env=self.env,
                               capture_output=True, text=True).stdout.split()
        for window in found:
            geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], env=self.env,
                                 capture_output=True, text=True).stdout
            values = dict(line.split("=", 1) for line in geo.split() if "=" in line)
            x, y, w, h = (int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
            if 0 < w <= 64 and 0 < h <= 64 and y < 40 and x > 0:  # small and inside the panel at the top
                return x + w // 2, y + h // 2
        raise RuntimeError(f"no tray icon of {app_class} is docked")

    def wait_for_tray_icon(self, app_class: str, proc=None, timeout: float = 60.0) -> bool:
        """True once ``app_class``'s icon is docked; False on timeout or when ``proc`` has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (proc is None or proc.poll() is None):
            try:
                self.tray_icon_centre(app_class)
                return True
            except RuntimeError:
                time.sleep(0.2)
        return False

    def run_tray_app(self, cmd: list[str], env: dict, log: Path, cwd=None, screenshot: Path | None = None) -> None:
        """Start the tray app ``cmd``; assert its icon docks, the voice loop gets ready (``log``) and
        Ctrl+C quits it cleanly."""
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def output() -> str:
            return proc.communicate(timeout=10)[0] if proc.poll() is not None else ""

        try:
            assert self.wait_for_tray_icon("jarvis", proc, timeout=120), output() or "no tray icon docked"
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and "voice loop ready" not in (log.read_text() if log.exists() else ""):
                assert proc.poll() is None, output()
                time.sleep(0.5)
            assert "voice loop ready" in log.read_text(), log.read_text()[-3000:]
            if screenshot is not None:
                self.screenshot(screenshot)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, out
            assert "Traceback" not in out, out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def click(self, x: int, y: int, button: int = 1) -> None:
        subprocess.run(["xdotool", "mousemove", "--sync", str(x), str(y), "click", str(button)],
                       env=self.env, check=True, timeout=10)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=20)
        return path

    def stop(self) -> None:
        """Only for a Desktop no Qt application is connected to (see the watchdog above)."""
        for proc in (self.trayer, self.xvfb):
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


_SCRATCH = Path(tempfile.mkdtemp(prefix="jarvis-screenshots-"))
atexit.register(shutil.rmtree, _SCRATCH, True)


def screenshot_path(name: str) -> Path:
    """Where a test's screenshot NAME.png goes: a temporary folder, or the folder named by ``JARVIS_SCREENSHOTS``
    (``scripts/screenshots.sh`` renews the README's that way)."""
    folder = Path(os.environ.get("JARVIS_SCREENSHOTS") or _SCRATCH)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"
