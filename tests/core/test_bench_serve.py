"""`jarvis bench serve` with a small count (loopback, stops by itself), and two Jarvis processes: one serves, the
other speaks through it and falls back to its own Piper when the server is killed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import soundfile

from jarvis.bench.serve import ServerProcess, bad_requests


def test_bench_serve_small_load_and_the_bad_request_table(tmp_path):
    out = tmp_path / "serve.json"
    result = subprocess.run([sys.executable, "-m", "jarvis", "bench", "serve", "--clients", "2", "--seconds", "4",
                             "--out", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert not list(tmp_path.glob("jarvis-*")), "the server's folder was left behind"
    report = json.loads(out.read_text())
    load = report["load"]
    assert load["errors"] == 0 and load["ok"] >= 2 and load["first_audio_byte"]["p50_ms"] > 0
    assert load["audio_s_per_s"] > 0 and load["rss_mb"]["max"]
    table = report["security"]
    assert len(table["requests"]) >= 20 and len(table["requests"]) == len(bad_requests(1))
    assert table["all_as_expected"], [r for r in table["requests"] if not r["ok"]]
    assert table["nothing_stored"]
    assert all(r["code"] and r["message"] for r in table["requests"]), "every refusal is one JSON line"


def test_another_jarvis_speaks_through_the_server_and_falls_back_when_it_dies(secret_service, tmp_path):
    from jarvis import secrets

    server = ServerProcess(engines=["piper"])
    home = tmp_path / "desktop"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps({
        "schema_version": 3, "preset": "custom",
        "tts": {"engines": ["openai", "piper"],
                "cloud": {"openai_base_url": f"http://127.0.0.1:{server.port}/v1", "openai_model": "tts-1",
                          "openai_voice": "jarvis"}}}))
    env = {**secret_service.subprocess_env(), "JARVIS_HOME": str(home)}
    env.pop("JARVIS_API_TOKEN", None)

    def say(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jarvis", "say", "Good evening.", "--out",
                               str(tmp_path / name)], capture_output=True, text=True, env=env, timeout=180)

    secrets.set_secret(secrets.OPENAI_API_KEY, server.token)   # the server's token is this desktop's key
    try:
        through = say("through.wav")
        assert through.returncode == 0, through.stderr
        assert soundfile.info(str(tmp_path / "through.wav")).samplerate == 24000, "the server's voice (24 kHz)"
        server.stop()
        assert not server.home.exists(), "the stopped server's folder was left behind"
        alone = say("alone.wav")
        assert alone.returncode == 0, alone.stderr
        assert soundfile.info(str(tmp_path / "alone.wav")).samplerate == 22050, "its own Piper (22050 Hz)"
        assert "openai" in alone.stderr.lower(), "the fallback is said, not silent: " + alone.stderr
    finally:
        server.stop()
        secrets.delete_secret(secrets.OPENAI_API_KEY)
