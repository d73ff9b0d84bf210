"""The readable table of ``uspd evaluate``: one column per detector, one row per metric."""
from __future__ import annotations

from typing import Any, Callable

from uspd.evaluate.metrics import DISTANCE_BINS_M, FA_CONFUSERS
from uspd.recording.labels import MINOR_ACTIONS


def _get(d: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _recall(path: str) -> Callable[[dict], str]:
    def f(r: dict) -> str:
        e = _get(r, path)
        if not e or not e.get("n"):
            return "-"
        return f"{_pct(e['recall'])} ({e['detected']}/{e['n']})"
    return f


def _stats(path: str) -> Callable[[dict], str]:
    return lambda r: f"{_num(_get(r, path + '.median'))} / {_num(_get(r, path + '.p95'))}"


def _fa(path: str) -> Callable[[dict], str]:
    def f(r: dict) -> str:
        e = _get(r, path)
        if not e or not e.get("negative_h"):
            return "-"
        return f"{_num(e['fa_per_h'])} ({e['alarms']} in {e['negative_h']:.2f} h)"
    return f


def _matched(i: int) -> Callable[[dict], str]:
    def f(r: dict) -> str:
        m = r.get("matched_fa") or []
        if i >= len(m):
            return "-"
        e = m[i]
        if not e.get("reachable"):
            return "unreachable"
        return f"major {_pct(e['major_recall'])}, minor {_pct(e['minor_recall'])} @ thr {e['threshold']:.3f}"
    return f


def rows(results: dict[str, dict]) -> list[tuple[str, Callable[[dict], str]]]:
    """(label, formatter) for every row that applies to ``results``."""
    out: list[tuple[str, Callable[[dict], str]]] = [
        ("clips / audio", lambda r: f"{r['clips']} / {r['audio_h']:.2f} h"),
        ("major recall (<= 5 m)", _recall("major")),
    ]
    out += [(f"  closest approach {lo:g}-{hi:g} m", _recall(f"major.by_distance.{lo:g}-{hi:g}m"))
            for lo, hi in DISTANCE_BINS_M]
    out += [
        ("  far > 5 m detected (lower is better)", _recall("major.far")),
        ("major delay median / p95 (s)", _stats("major.delay_s")),
        ("entries (first major of a visit)", _recall("major.entry")),
        ("entry delay median / p95 (s)", _stats("major.entry.delay_s")),
        ("minor recall", _recall("minor")),
    ]
    out += [(f"  {a}", _recall(f"minor.by_action.{a}")) for a in MINOR_ACTIONS]
    out += [
        ("minor delay median / p95 (s)", _stats("minor.delay_s")),
        ("false alarms /h (negative time)", _fa("false_alarms")),
        ("  clips without people", _fa("false_alarms.empty_clips")),
    ]
    present = sorted({k for r in results.values() for k in (_get(r, "false_alarms.by_confuser") or {})},
                     key=FA_CONFUSERS.index)
    out += [(f"  during {k}", _fa(f"false_alarms.by_confuser.{k}")) for k in present]
    out += [
        ("motion true, share of negative time", lambda r: _pct(_get(r, "false_alarms.motion_fraction"))),
        ("presence on (share of arrivals)", lambda r: _pct(_get(r, "presence.on_rate"))),
        ("presence on latency median / p95 (s)", _stats("presence.on_latency_s")),
        ("presence held while person in range", lambda r: _pct(_get(r, "presence.held_fraction"))),
        ("presence off in time (n evaluable)",
         lambda r: f"{_pct(_get(r, 'presence.off_rate'))} ({_get(r, 'presence.off_evaluable')})"),
        ("presence off latency median / p95 (s)", _stats("presence.off_latency_s")),
        ("empty room: presence-on events /h", lambda r: _num(_get(r, "presence.empty_presence_on_per_h"))),
        ("real-time factor (audio s / CPU s)", lambda r: _num(r.get("real_time_factor"), "{:.0f}x")),
    ]
    n_matched = max((len(r.get("matched_fa") or []) for r in results.values()), default=0)
    first = next(iter(results.values()))
    for i in range(n_matched):
        target = (first.get("matched_fa") or [{}] * (i + 1))[i].get("target_fa_per_h")
        out.append((f"recall at {target:g} FA/h", _matched(i)))
    return out


def format_table(results: dict[str, dict], title: str = "") -> str:
    """Plain-text table: metric rows x detector columns."""
    table = [("metric", *results.keys())]
    table += [(label, *(fmt(r) for r in results.values())) for label, fmt in rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [title] if title else []
    for j, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
