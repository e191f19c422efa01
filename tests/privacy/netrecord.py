"""Every network connection a command attempts: strace records ``connect``, ``sendto`` and ``sendmsg`` with an
address, of the command and all its children, in a network namespace of its own (``unshare -n``) where only the
loopback interface is up. Nothing can leave; every attempt is still recorded, with where it went.

``Attempt.leaves`` is an address off this machine; ``Attempt.is_dns`` a name lookup (port 53, even to a resolver
on loopback such as systemd-resolved's 127.0.0.53: the name itself would leave).
"""
from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\),.*?inet_pton\(AF_INET6, "([^"]+)"')


@dataclass(frozen=True)
class Attempt:
    host: str
    port: int
    line: str

    @property
    def is_dns(self) -> bool:
        return self.port == 53

    @property
    def leaves(self) -> bool:
        address = ipaddress.ip_address(self.host)
        return not (address.is_loopback or address.is_unspecified)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.line.strip()[:160]})"


def missing_tools() -> list[str]:
    return [tool for tool in ("strace", "unshare", "ip") if shutil.which(tool) is None]


def wrap(command: list[str], log: Path) -> list[str]:
    """``command`` run in its own network namespace (loopback up) under strace, the record going to ``log``."""
    # Absolute paths: the command's own PATH may be a bare one (/usr/bin:/bin has no ip).
    traced = [shutil.which("strace"), "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg",
              "-e", "signal=none", "-o", str(log), *command]
    return [shutil.which("unshare"), "-n", "/bin/sh", "-c", f'{shutil.which("ip")} link set lo up && exec "$@"',
            "netns", *traced]


def attempts(log: Path) -> list[Attempt]:
    """The network (AF_INET/AF_INET6) attempts in a strace record; local (Unix) sockets are not network."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        for pattern in (_INET, _INET6):
            for port, host in pattern.findall(line):
                found.append(Attempt(host, int(port), line))
    return found


def off_machine(log: Path) -> list[Attempt]:
    """What would have left the machine: any address off it, and any name lookup."""
    return [a for a in attempts(log) if a.leaves or a.is_dns]


def run(command: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(wrap(command, log), **kwargs)
