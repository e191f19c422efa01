"""When is a reply's first block heard on a freshly started output stream, and on one already running?

The pipeline bench's first turn of every run had its reply heard ~30 ms *before* its first block by the old
measure (the player's ``on_start`` plus the stream latency PortAudio reports). This plays a short tone four times
through ``jarvis.audio.player.Player`` on the private PulseAudio's virtual speaker, the first on a new stream (as a
run's first reply), and prints for the first audible block: how many callbacks came before it, when the player
says it is heard (``on_output``'s time, from PortAudio's DAC time) against the callback's own time, and the old
measure against it.

Run: .venv/bin/python benchmarks/fresh_stream.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from jarvis.bench.virtual_audio import VirtualAudio  # noqa: E402

RATE = 22050


def main() -> int:
    with VirtualAudio() as audio:
        audio.apply()
        from jarvis.audio.player import Player

        blocks: list[tuple[float, float, bool]] = []   # (callback time, heard at, audible)
        player = Player("jarvis_speaker", block_ms=20,
                        on_output=lambda block, rate, heard_at, underflow: blocks.append(
                            (time.monotonic(), heard_at, bool(np.abs(block).max() > 0.003))))
        tone = (0.3 * np.sin(np.arange(RATE // 5) * 0.1)).astype(np.float32)
        try:
            for take in range(4):
                blocks.clear()
                started: list[float] = []
                player.play_stream([(RATE, tone)], on_start=lambda: started.append(time.monotonic()))
                first = next(i for i, block in enumerate(blocks) if block[2])
                now, heard, _ = blocks[first]
                gaps = [round(1000 * (blocks[k + 1][0] - blocks[k][0]), 1) for k in range(first, first + 3)]
                print(f"{'new' if take == 0 else 'running'} stream: {first} callbacks before the sound; heard "
                      f"{1000 * (heard - now):.1f} ms after its callback; old measure (on_start + "
                      f"{1000 * player.latency_s:.0f} ms latency) {1000 * (started[0] + player.latency_s - heard):.1f} "
                      f"ms later; next callbacks after {gaps} ms")
                time.sleep(1.0)
        finally:
            player.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
