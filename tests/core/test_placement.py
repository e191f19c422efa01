"""Model placement on described machines (a pure function: no GPU is needed to test it) and GPU memory pressure
with a simulated memory source (this machine has no GPU; the monitor only reads rows like NVML's)."""
from __future__ import annotations

import threading

import pytest

from jarvis.placement import GIB, NEEDS, Gpu, Need, Placer, place
from jarvis.pressure import MemoryPressure

ALL = [Need(name, size) for name, size in NEEDS.items()]


def gpu(index: int, total_gib: float, used_gib: float = 0.5, capability=(9, 0), name: str = "") -> Gpu:
    return Gpu(index, name or f"GPU{index}", int(total_gib * GIB), int((total_gib - used_gib) * GIB), capability)


def test_no_gpu_everything_on_the_cpu_quietly():
    p = place(ALL, [])
    assert p.device == {"csm": "cpu", "whisper": "cpu", "speaker_encoder": "cpu"}
    assert p.precision["whisper"] == "int8" and p.notes == []


def test_one_big_gpu_takes_everything_in_its_precision():
    p = place(ALL, [gpu(0, 80)])
    assert set(p.device.values()) == {"cuda:0"}
    assert p.precision == {"csm": "bfloat16", "whisper": "float16", "speaker_encoder": "bfloat16"}


def test_an_old_gpu_gets_float16_and_no_graphs():
    old = gpu(0, 16, capability=(6, 1))
    assert place(ALL, [old]).precision["csm"] == "float16" and not old.cuda_graphs and gpu(0, 8).cuda_graphs


def test_two_gpus_csm_on_the_roomiest_and_the_rest_where_most_is_left():
    p = place(ALL, [gpu(0, 8), gpu(1, 24)])
    assert p.device["csm"] == "cuda:1"
    assert p.device["whisper"] == "cuda:1"           # 24 - 0.5 - 5 GiB left there > 7.5 GiB on the small one
    # by free memory, not size: the smaller GPU is emptier
    emptier = place(ALL, [gpu(0, 10, used_gib=1), gpu(1, 12, used_gib=5)])
    assert emptier.device["csm"] == "cuda:0" and emptier.device["whisper"] == "cuda:1"


def test_four_gpus_of_different_sizes():
    p = place(ALL, [gpu(0, 12), gpu(1, 48), gpu(2, 24), gpu(3, 6)])
    assert p.device["csm"] == "cuda:1"
    assert p.device["whisper"] == "cuda:1" and p.device["speaker_encoder"] == "cuda:1"
    crowded = place(ALL, [gpu(0, 12, 10), gpu(1, 48, 46), gpu(2, 24, 18), gpu(3, 6, 5.9)])
    assert crowded.device["csm"] == "cpu" and "fits on no GPU" in crowded.notes[0]
    assert crowded.device["whisper"] == "cuda:2"


def test_a_gpu_too_full_for_csm_still_takes_the_small_models():
    p = place(ALL, [gpu(0, 6, used_gib=1)])
    assert p.device["csm"] == "cpu" and p.device["whisper"] == "cuda:0"


def test_pins_win_and_an_impossible_pin_is_said():
    p = place(ALL, [gpu(0, 8), gpu(1, 24)], pins={"csm": "0", "whisper": "cpu"})
    assert p.device["csm"] == "cuda:0" and p.device["whisper"] == "cpu" and not p.notes
    missing = place(ALL, [gpu(0, 24)], pins={"csm": "3"})
    assert missing.device["csm"] == "cuda:0" and "there is no GPU 3" in missing.notes[0]
    full = place(ALL, [gpu(0, 6, used_gib=3), gpu(1, 24)], pins={"csm": "0"})
    assert full.device["csm"] == "cuda:1" and "has no room" in full.notes[0]


def test_parallel_loads_never_overbook_a_gpu():
    """Three loads at once on a GPU with room for two CSMs: the third goes elsewhere (here the CPU)."""
    placer = Placer([gpu(0, 12, used_gib=0)])
    results: list[str] = []
    barrier = threading.Barrier(3)

    def load(k: int) -> None:
        barrier.wait()
        device, _, _ = placer.reserve(Need(f"csm{k}", 5 * GIB))
        results.append(device)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["cpu", "cuda:0", "cuda:0"]
    placer.release("csm0")
    placer.release("csm1")
    placer.release("csm2")
    assert placer.reserve(Need("csm", 5 * GIB))[0] == "cuda:0"


class SimulatedGpu:
    """A simulated memory source (no GPU here): ``used`` changes as the test says; freeing caches frees
    ``cache_bytes`` once."""

    def __init__(self, total: int, used: int, cache: int = 0):
        self.total, self.used, self.cache, self.freed = total, used, cache, 0

    def read(self) -> list[dict]:
        return [{"index": 0, "name": "Simulated H100", "used_bytes": self.used, "total_bytes": self.total}]

    def relieve(self) -> None:
        self.freed += 1
        self.used -= self.cache
        self.cache = 0


def test_pressure_frees_caches_first_and_only_then_tells_the_user():
    gpu_ = SimulatedGpu(80 * GIB, 70 * GIB, cache=4 * GIB)    # 87.5 %, 82.5 % once the cache is freed
    said: list[tuple[str, str]] = []
    monitor = MemoryPressure(gpu_.read, gpu_.relieve, lambda s, m: said.append((s, m)))
    assert monitor.check() == "ok" and gpu_.freed == 1 and said == []


def test_pressure_refuses_large_loads_says_so_once_and_recovers():
    gpu_ = SimulatedGpu(80 * GIB, 75 * GIB)
    said: list[tuple[str, str]] = []
    monitor = MemoryPressure(gpu_.read, gpu_.relieve, lambda s, m: said.append((s, m)))
    assert not monitor.allow_large_load() and not monitor.allow_large_load()
    assert [s for s, _ in said] == ["pressure"] and "94% full on Simulated H100" in said[0][1]
    gpu_.used = 40 * GIB
    assert monitor.allow_large_load()
    assert [s for s, _ in said] == ["pressure", "ok"]


def test_a_failing_relief_does_not_stop_the_check():
    gpu_ = SimulatedGpu(10 * GIB, 9 * GIB)
    monitor = MemoryPressure(gpu_.read, lambda: 1 / 0)
    assert monitor.check() == "pressure"


@pytest.mark.parametrize("rows", [[], [{"index": 0, "name": "x", "used_bytes": None, "total_bytes": None}]])
def test_no_readable_gpu_is_no_pressure(rows):
    assert MemoryPressure(lambda: rows).check() == "ok"


# -- the assistant's settings and the model host -----------------------------------------------------------------
def test_the_plan_places_only_what_is_left_on_auto_and_follows_the_pins():
    from jarvis.config import Settings
    from jarvis.placement import plan

    settings = Settings()                         # csm first in tts.engines, every device on auto
    p = plan(settings, [gpu(0, 8), gpu(1, 24)])
    assert p.device == {"csm": "cuda:1", "whisper": "cuda:1", "speaker_encoder": "cuda:1"}
    settings.gpu.placement = {"whisper": 0, "speaker_encoder": "cpu"}
    assert plan(settings, [gpu(0, 8), gpu(1, 24)]).device == {"csm": "cuda:1", "whisper": "cuda:0",
                                                               "speaker_encoder": "cpu"}
    settings.tts.csm.device, settings.listen.stt_device = "cuda:0", "cpu"     # set by hand: not placed
    assert plan(settings, [gpu(0, 8), gpu(1, 24)]).device == {"speaker_encoder": "cpu"}
    settings.tts.engines = ["piper", "system"]
    settings.tts.csm.device = "auto"
    assert "csm" not in plan(settings, [gpu(0, 80)]).device
    assert plan(Settings(), []).device == {"csm": "cpu", "whisper": "cpu", "speaker_encoder": "cpu"}


def test_the_host_hands_each_model_its_place_on_a_described_two_gpu_machine(monkeypatch):
    """The GPUs are described (this machine has none): the host's plan reaches CSM, Whisper and the speaker
    encoder before they load; nothing is loaded here."""
    from jarvis import placement
    from jarvis.config import Settings
    from jarvis.events import EventBus
    from jarvis.host import ModelHost
    from jarvis.listen import stt
    from jarvis.speak.chain import TtsChain

    monkeypatch.setattr(placement, "gpus_here", lambda: [gpu(0, 12, used_gib=4), gpu(1, 24)])
    monkeypatch.setattr(stt, "cuda_ready", lambda: True)
    settings = Settings()
    settings.gpu.placement = {"whisper": 0}
    host = ModelHost(settings, EventBus())
    host.place()
    assert host.placement.device == {"csm": "cuda:1", "whisper": "cuda:0", "speaker_encoder": "cuda:1"}
    chain = host.place_tts(TtsChain.from_settings(settings.tts, EventBus()))
    assert chain.engine_state("csm")[0].placed_device == "cuda:1"
    assert host.speaker_encoder().device == "cuda:1"
    assert stt.resolve_placed("auto", "int8", host.placed("whisper")) == ("cuda", 0, "float16")
    assert stt.resolve_placed("cuda:1", "int8") == ("cuda", 1, "int8")     # set by hand: as set, index apart
    monkeypatch.setattr(stt, "cuda_ready", lambda: False)                   # no cuBLAS 12: Whisper stays on the CPU
    assert stt.resolve_placed("auto", "int8", "cuda:0") == ("cpu", 0, "int8")
    chain.close()


def test_new_voice_settings_with_csm_get_a_place_where_room_is_left(monkeypatch):
    from jarvis import placement
    from jarvis.config import Settings
    from jarvis.events import EventBus
    from jarvis.host import ModelHost
    from jarvis.speak.chain import TtsChain

    monkeypatch.setattr(placement, "gpus_here", lambda: [gpu(0, 24, used_gib=20), gpu(1, 16)])
    settings = Settings()
    settings.tts.engines = ["piper"]
    host = ModelHost(settings, EventBus())
    host.place()
    assert "csm" not in host.placement.device
    new = Settings()                                # CSM switched on in Settings
    chain = host.place_tts(TtsChain.from_settings(new.tts, EventBus()))
    assert chain.engine_state("csm")[0].placed_device == "cuda:1"
    chain.close()
