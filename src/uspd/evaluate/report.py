"""The readable table of ``uspd evaluate``: one column per detector, one row per metric; then, when the operating
points were swept, each detector's lowest FA/h at equal major recall and their ratio (the "10x" check)."""
from __future__ import annotations

from typing import Any, Callable

from uspd.evaluate.metrics import DISTANCE_BINS_M, FA_CONFUSERS, MetricsConfig
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


def _clips_alarmed(r: dict) -> str:
    n, a = _get(r, "false_alarms.clips_negative"), _get(r, "false_alarms.clips_alarmed")
    return "-" if not n else f"{a} of {n} ({a / n:.1%})"


def _most_missed(r: dict) -> str:
    worst, m = _get(r, "minor.most_missed_clips"), _get(r, "minor")
    if not worst or not m or not m.get("n"):
        return "-"
    return f"{sum(w['missed'] for w in worst)} of {m['n'] - m['detected']} missed"


def _fa(path: str) -> Callable[[dict], str]:
    def f(r: dict) -> str:
        e = _get(r, path)
        if not e or not e.get("negative_h"):
            return "-"
        return f"{_num(e['fa_per_h'])} ({e['alarms']} in {e['negative_h']:.2f} h)"
    return f


def _sweep_entry(key: str, i: int, fmt: Callable[[dict], str]) -> Callable[[dict], str]:
    """Formatter of entry ``i`` of the sweep list ``key`` (``matched_fa`` or ``fa_at_recall``)."""
    def f(r: dict) -> str:
        m = r.get(key) or []
        if i >= len(m):
            return "-"
        return fmt(m[i]) if m[i].get("reachable") else "unreachable"
    return f


def _longest(results: dict[str, dict], key: str) -> list[dict]:
    return max((r.get(key) or [] for r in results.values()), key=len, default=[])


def _op(e: dict) -> str:
    """An operating point: strict threshold x debounce."""
    return f"thr {e['threshold']:.5g} x {e['debounce_hops']} hops"


def _matched_recall(e: dict) -> str:
    return f"{_pct(e['major_recall'])} / {_pct(e['minor_recall'])} / {_pct(e.get('entry_recall'))}"


def _matched_point(e: dict) -> str:
    return f"{_num(e['fa_per_h'])}/h, delay {_num(e.get('delay_median_s'))} s @ {_op(e)}"


def _fa_at(e: dict) -> str:
    return f"{_num(e['fa_per_h'])}/h ({e['alarms']}) @ {_op(e)}, recall {_pct(e['major_recall'])}"


def fa_ratios(results: dict[str, dict]) -> list[dict[str, Any]]:
    """Per major-recall level of ``fa_at_recall``: each detector's lowest FA/h and, for every detector after the
    first, ``ratios[name]`` = {"ratio": first / it (None when either is unreachable or both are 0),
    "ratio_at_least": a bound as if it had raised one alarm, when it raised none}; ``ratio`` / ``ratio_at_least``
    repeat the second detector's (the issue's "classic / nn")."""
    names = list(results)
    levels = [e["major_recall_level"] for e in results[names[0]].get("fa_at_recall") or []] if names else []
    out = []
    for i, level in enumerate(levels):
        es = {n: (results[n].get("fa_at_recall") or [{}] * (i + 1))[i] for n in names}
        row: dict[str, Any] = {"major_recall_level": level,
                               "fa_per_h": {n: e.get("fa_per_h") if e.get("reachable") else None
                                            for n, e in es.items()},
                               "ratio": None, "ratio_at_least": None, "ratios": {}}
        a = row["fa_per_h"][names[0]]
        for n in names[1:]:
            b, r = row["fa_per_h"][n], {"ratio": None, "ratio_at_least": None}
            if a is not None and b is not None and b > 0:
                r["ratio"] = a / b
            elif a is not None and b == 0 and a > 0 and es[n].get("negative_h"):
                r["ratio_at_least"] = a * es[n]["negative_h"]
            row["ratios"][n] = r
        if len(names) >= 2:
            row.update(row["ratios"][names[1]])
        out.append(row)
    return out


def _ratio_cell(ratio: dict[str, Any], second: str) -> str:
    if ratio["ratio"] is not None:
        return f"{ratio['ratio']:.1f}x"
    if ratio["ratio_at_least"] is not None:
        return f">= {ratio['ratio_at_least']:.1f}x ({second}: 0 alarms)"
    return "-"


def format_fa_ratios(results: dict[str, dict]) -> str:
    """The 10x check: lowest FA/h of each detector at equal major recall, and the first one's over each other's."""
    ratios = fa_ratios(results)
    if not ratios:
        return ""
    names = list(results)
    head = ["major recall", *(f"{n} FA/h" for n in names), *(f"ratio {names[0]}/{n}" for n in names[1:])]
    table = [head]
    for row in ratios:
        cells = [f">= {_pct(row['major_recall_level'])}",
                 *("unreachable" if row["fa_per_h"][n] is None else _num(row["fa_per_h"][n]) for n in names),
                 *(_ratio_cell(row["ratios"][n], n) for n in names[1:])]
        table.append(cells)
    return _layout(table, "false alarms at equal major recall (lowest FA/h over threshold x debounce)")


def rows(results: dict[str, dict]) -> list[tuple[str, Callable[[dict], str]]]:
    """(label, formatter) for every row that applies to ``results``."""
    out: list[tuple[str, Callable[[dict], str]]] = [
        ("clips / audio", lambda r: f"{r['clips']} / {r['audio_h']:.2f} h"),
        ("major recall (<= 5 m)", _recall("major")),
    ]
    out += [(f"  closest approach {lo:g}-{hi:g} m", _recall(f"major.by_distance.{lo:g}-{hi:g}m"))
            for lo, hi in DISTANCE_BINS_M]
    set_kinds = sorted({k for r in results.values() for k in (_get(r, "major.by_set_kind") or {})})
    out += [(f"  in {k} clips", _recall(f"major.by_set_kind.{k}")) for k in set_kinds]
    contexts = sorted({k for r in results.values() for k in (_get(r, "major.by_context") or {})})
    out += [(f"  after: {k}", _recall(f"major.by_context.{k}")) for k in contexts]
    out += [
        ("  people staying beyond 5 m detected (lower is better)", _recall("major.far")),
        ("major delay median / p95 (s)", _stats("major.delay_s")),
        (f"  starting from {MetricsConfig.settled_s:g} s after the recording's start", _recall("major.settled")),
        ("  their delay median / p95 (s)", _stats("major.settled.delay_s")),
        ("entries (first major of a visit)", _recall("major.entry")),
        ("entry delay median / p95 (s)", _stats("major.entry.delay_s")),
        ("minor recall", _recall("minor")),
    ]
    out += [(f"  {a}", _recall(f"minor.by_action.{a}")) for a in MINOR_ACTIONS]
    minor_kinds = sorted({k for r in results.values() for k in (_get(r, "minor.by_set_kind") or {})})
    out += [(f"  in {k} clips", _recall(f"minor.by_set_kind.{k}")) for k in minor_kinds]
    out += [("  misses in the 3 clips with most", _most_missed)]
    out += [
        ("minor delay median / p95 (s)", _stats("minor.delay_s")),
        ("false alarms /h (negative time)", _fa("false_alarms")),
        ("  clips without people", _fa("false_alarms.empty_clips")),
        (f"  from {MetricsConfig.settled_s:g} s after each recording's start", _fa("false_alarms.settled")),
        ("  clips with any false alarm", _clips_alarmed),
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
    for i, e in enumerate(_longest(results, "matched_fa")):
        out += [(f"recall at {e['target_fa_per_h']:g} FA/h (major / minor / entry)",
                 _sweep_entry("matched_fa", i, _matched_recall)),
                ("  FA/h, major delay median, operating point", _sweep_entry("matched_fa", i, _matched_point))]
    for i, e in enumerate(_longest(results, "fa_at_recall")):
        out.append((f"FA/h at major recall >= {_pct(e['major_recall_level'])}",
                    _sweep_entry("fa_at_recall", i, _fa_at)))
    return out


def _layout(table: list[list[str]] | list[tuple[str, ...]], title: str = "") -> str:
    """Left-aligned columns with a rule under the header row."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [title] if title else []
    for j, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(results: dict[str, dict], title: str = "") -> str:
    """Plain-text table: metric rows x detector columns; then the FA-at-recall comparison, if swept."""
    table = [("metric", *results.keys())]
    table += [(label, *(fmt(r) for r in results.values())) for label, fmt in rows(results)]
    text = _layout(table, title)
    ratios = format_fa_ratios(results)
    return text + ("\n\n" + ratios if ratios else "")
