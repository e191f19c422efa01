"""What the CPU's vector units can do, from ``/proc/cpuinfo`` (x86 Linux; elsewhere unknown)."""
from __future__ import annotations


def flags(cpuinfo: str | None = None) -> set[str] | None:
    """The first CPU's x86 feature flags (``avx2``, ``avx512_vnni``, ...) from ``/proc/cpuinfo`` or ``cpuinfo``'s
    text; None where there are none to read (not Linux, not x86)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as info:
                cpuinfo = info.read()
        except OSError:
            return None
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def int8_products_saturate(cpu_flags: set[str] | None) -> bool:
    """True on x86 CPUs without VNNI: onnxruntime's int8 kernels there multiply u8 by s8 pairs into 16-bit sums
    (``vpmaddubsw``), which saturate, so a quantized model's results differ from its own definition. Smart Turn's
    verdict on a sentence cut mid-way was 0.38-0.55 ("finished") on such an AMD EPYC (AVX2) against 0.02-0.07 run
    as defined (``jarvis.listen.end_of_turn.unsigned_weights`` avoids them). With VNNI (AVX-512 or AVX) the sums
    are 32-bit; ARM's dot products do not saturate either."""
    return bool(cpu_flags) and "avx2" in cpu_flags and not cpu_flags & {"avx512_vnni", "avx_vnni"}
