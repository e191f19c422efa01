"""What `jarvis bench room` found: counts and rates per condition, echo level and SNR, the issue's targets,
the text table and the chart."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from jarvis.bench.stats import stats

CUT_MS = 150.0                       # barge-in: Jarvis must be silent this soon after the end of the wake word


# -- summary ------------------------------------------------------------------------------------------------

def _pct(n: int, d: int) -> float | None:
    return round(100 * n / d, 1) if d else None


def summarise(result: dict) -> dict:
    """Counts and rates per echo condition, per SNR and overall."""
    def figures(conds: list[dict]) -> dict:
        turns = [t for c in conds for t in c["turns"]]
        chains = [t for t in turns if t["kind"] == "barge_in"]
        # a barge-in can be tried only while Jarvis is still telling the story
        valid = [t for t in chains if t.get("story_intent") == "llm" and "woke" in t
                 and t.get("outcome") != "the answer had ended before the wake word"]
        follows = [t["follow_up"] for t in chains if "follow_up" in t]
        asked = [t for t in turns if "expected" in t] + follows  # every turn with a skill to hit
        answered = [t for t in asked if t.get("reply")]
        wake_clips = len([t for t in turns if t["kind"] == "command"]) + len(chains) + len([t for t in chains
                                                                                          if "woke" in t])
        woke = sum(t.get("woke", False) for t in turns) + sum(t.get("story_woke", False) for t in chains)
        v2v = [t["voice_to_voice_ms"] / 1000 for t in asked if t.get("voice_to_voice_ms") is not None]
        return {
            "barge_ins": len(chains), "barge_ins_valid": len(valid),
            "barge_in_success": sum(t.get("success", False) for t in valid),
            "barge_in_success_pct": _pct(sum(t.get("success", False) for t in valid), len(valid)),
            "barge_in_cut_ms": stats([t["cut_ms"] / 1000 for t in valid if t.get("cut_ms") is not None]),
            # without the 150 ms bound: cut off at all, and the time answered
            "barge_in_cut_and_answered": sum(bool(t.get("cut") and t.get("right")) for t in valid),
            "barge_in_wake_ms": stats([t["wake_ms"] / 1000 for t in valid if t.get("wake_ms") is not None]),
            "barge_in_wake_to_cut_ms": stats([t["wake_to_cut_ms"] / 1000 for t in valid
                                              if t.get("wake_to_cut_ms") is not None]),
            "follow_ups": len(follows), "follow_ups_answered": sum(f["answered"] for f in follows),
            "follow_ups_answered_pct": _pct(sum(f["answered"] for f in follows), len(follows)),
            "intent_turns": len(asked), "intent_answered": len(answered),
            "intent_right": sum(t["right"] for t in asked),
            "intent_accuracy_pct": _pct(sum(t["right"] for t in answered), len(answered)),
            "intent_right_of_all_pct": _pct(sum(t["right"] for t in asked), len(asked)),
            "wake_clips": wake_clips, "wake_misses": wake_clips - woke,
            "pauses": sum(c.get("pauses", 0) for c in conds),
            "pauses_resumed": sum(c.get("pauses_resumed", 0) for c in conds),
            "false_wakes": sum(c["false_wakes"] for c in conds),
            "self_transcripts": sum(c["self_transcripts"] for c in conds),
            "phantom_turns": sum(c["phantom_turns"] for c in conds),
            "skill_voice_to_voice_ms": stats(v2v),
        }

    conds = result["conditions"]
    by_echo = {}
    for echo in dict.fromkeys(c["echo_db"] for c in conds):
        by_echo["headphones" if echo is None else f"echo {echo:g} dB"] = figures([c for c in conds
                                                                                   if c["echo_db"] == echo])
    by_snr = {f"{snr:g} dB SNR": figures([c for c in conds if c["snr_db"] == snr])
              for snr in dict.fromkeys(c["snr_db"] for c in conds)}
    return {"overall": figures(conds), "by_echo": by_echo, "by_snr": by_snr,
            "by_condition": {c["label"]: figures([c]) for c in conds}}


def targets(result: dict) -> dict:
    s, out = result["summary"], {}

    def goal(name: str, measured, ok: Callable[[Any], bool], goal_text: str) -> None:
        out[name] = {"goal": goal_text, "measured": measured, "met": bool(measured is not None and ok(measured))}

    for label, f in s["by_echo"].items():
        if label != "headphones":
            goal(f"barge_in_{label}", f["barge_in_success_pct"], lambda v: v >= 95, ">= 95 %")
            goal(f"follow_ups_{label}", f["follow_ups_answered_pct"], lambda v: v >= 95, ">= 95 %")
            goal(f"self_transcripts_{label}", f["self_transcripts"], lambda v: v == 0, "0")
    for label, need in (("20 dB SNR", 95), ("5 dB SNR", 85)):
        if label in s["by_snr"]:
            goal(f"intent_accuracy_{label}", s["by_snr"][label]["intent_accuracy_pct"], lambda v, n=need: v >= n,
                 f">= {need} %")
    if "10 dB SNR" in s["by_snr"]:
        f = s["by_snr"]["10 dB SNR"]
        goal("wake_misses_10_dB_SNR", _pct(f["wake_misses"], f["wake_clips"]), lambda v: v <= 5, "<= 5 %")
    echo = result.get("echo_canceller") or {}
    goal("echo_canceller_cpu_ms_per_10ms_frame_p50", echo.get("cpu_ms_p50"), lambda v: v <= 1.0, "<= 1 ms")
    v2v = s["overall"]["skill_voice_to_voice_ms"].get("p50")
    goal("skill_voice_to_voice_p50_ms", v2v, lambda v: v <= 815, "<= 815 ms (before echo cancellation)")
    return out


def format_text(result: dict) -> str:
    s = result["summary"]
    lines = [f"Room benchmark: {len(result['conditions'])} conditions on {result['hardware']} "
             f"({result['wall_s']:.0f} s)"]
    head = f"{'condition':34} {'barge-in':>9} {'follow-up':>10} {'intent':>8} {'wake miss':>10} {'false':>6} " \
           f"{'self':>5} {'v2v P50':>8} {'resumed':>8}"
    lines.append(head)
    for label, f in {**s["by_condition"], **s["by_echo"], **s["by_snr"], "overall": s["overall"]}.items():
        lines.append(f"{label:34} {_frac(f['barge_in_success'], f['barge_ins_valid']):>9} "
                     f"{_frac(f['follow_ups_answered'], f['follow_ups']):>10} "
                     f"{_frac(f['intent_right'], f['intent_answered']):>8} "
                     f"{_frac(f['wake_misses'], f['wake_clips']):>10} {f['false_wakes']:>6} "
                     f"{f['self_transcripts']:>5} {f['skill_voice_to_voice_ms'].get('p50', '-'):>8} "
                     f"{_frac(f['pauses_resumed'], f['pauses']):>8}")
    echo = result.get("echo_canceller")
    lines.append("echo canceller: " + (", ".join(f"{k} {v}" for k, v in echo.items()) if echo else "not running"))
    for name, t in result["targets"].items():
        lines.append(f"target {name}: goal {t['goal']}, measured {t['measured']}, {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)


def _frac(n: int, d: int) -> str:
    return f"{n}/{d}" if d else "-"


def plot(result: dict, path: str) -> None:
    """Barge-in and follow-ups per echo condition, intent accuracy per SNR, barge-in timing, voice to voice."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["summary"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), layout="constrained")
    labels = list(s["by_echo"])
    x = np.arange(len(labels))
    ax = axes[0][0]
    ax.bar(x - 0.27, [s["by_echo"][k]["barge_in_success_pct"] or 0 for k in labels], 0.27,
           label="barge-in: cut <= 150 ms + time answered")
    ax.bar(x, [_pct(s["by_echo"][k]["barge_in_cut_and_answered"], s["by_echo"][k]["barge_ins_valid"]) or 0
               for k in labels], 0.27, label="barge-in: cut at all + time answered")
    ax.bar(x + 0.27, [s["by_echo"][k]["follow_ups_answered_pct"] or 0 for k in labels], 0.27,
           label="follow-ups answered")
    ax.axhline(95, color="red", linestyle="--", linewidth=1)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 119)
    ax.set_ylabel("%")
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.set_title("Barge-in and follow-ups (goal 95 %)", fontsize=9)
    ax = axes[0][1]
    snrs = list(s["by_snr"])
    width = 0.8 / max(len(labels), 1)
    for i, echo in enumerate(labels):
        vals = [s["by_condition"].get(f"{echo}, {snr}", {}).get("intent_accuracy_pct") or 0 for snr in snrs]
        ax.bar(np.arange(len(snrs)) + (i - (len(labels) - 1) / 2) * width, vals, width, label=echo)
    ax.axhline(95, color="red", linestyle="--", linewidth=1)
    ax.axhline(85, color="orange", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(snrs)), snrs)
    ax.set_ylim(0, 119)
    ax.legend(fontsize=7, loc="upper left", ncol=3)
    ax.set_title("Intent accuracy of answered commands\n(goals: 95 % at 20 dB SNR, 85 % at 5 dB)", fontsize=9)
    ax = axes[1][0]
    for i, k in enumerate(labels):
        chains = [t for c in result["conditions"] for t in c["turns"] if t["kind"] == "barge_in"
                  and ("headphones" if c["echo_db"] is None else f"echo {c['echo_db']:g} dB") == k]
        for field, marker, name in (("wake_ms", "x", "wake event"), ("cut_ms", "o", "silent (paused or cut)")):
            d = [t[field] for t in chains if t.get(field) is not None]
            jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(d))
            ax.scatter(i + jitter + (0.15 if marker == "o" else -0.15), d, s=16, marker=marker,
                       color="C1" if marker == "o" else "C0", label=name if i == 0 else None)
    ax.axhline(CUT_MS, color="red", linestyle="--", linewidth=1)
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylabel("ms after the voiced end of \"Jarvis\"")
    ax.legend(fontsize=7)
    ax.set_title("Barge-in timing (goal: cut within 150 ms)", fontsize=9)
    ax = axes[1][1]
    conds = list(s["by_condition"])
    vals = [s["by_condition"][k]["skill_voice_to_voice_ms"].get("p50", 0) for k in conds]
    ax.barh(np.arange(len(conds)), vals, color="0.5")
    ax.axvline(815, color="red", linestyle="--", linewidth=1)
    ax.set_yticks(np.arange(len(conds)), conds, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms, P50 (red: 815 ms, quiet room and headphones, before)")
    o = s["overall"]
    ax.set_title(f"Skill answers, voice to voice\nwake misses {o['wake_misses']}/{o['wake_clips']}, false wakes "
                 f"{o['false_wakes']}, self-transcripts {o['self_transcripts']}, phantom turns {o['phantom_turns']}",
                 fontsize=9)
    fig.suptitle(f"jarvis bench room: {result['hardware']}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
