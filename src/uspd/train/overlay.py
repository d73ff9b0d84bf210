"""Training augmentation: a walker laid over a long stretch of a running confuser (``uspd train --overlay HOURS``).

The echo powers of independent movers add. A training clip with a major movement (the walker) gives its band powers,
shifted by one gain per channel so that its noise lies on the host's and kept where they stand :data:`GATE_DB` above
its floor (:func:`add_above_floor_db`), which are added, in linear power, to a long negative clip in which a confuser or a pet
moves (the host), from a random hop at least :data:`SETTLE_S` in: the movement arrives when the feature backgrounds have settled on the confuser, the "late
walk-in beside a running fan" that most of the evaluation sets' missed movements are. The mix keeps the host's
labels, with the walker's motion, action and distance in its window and the flags (presence, pet, far, confusers,
edge) of both, and the walker's motion hops that the host masks (no band of any channel :data:`VISIBLE_DB` higher
than the host's alone) flagged ``edge`` (no loss); it has the smaller of the two channel counts.

Mixes are made from the band features before the model inputs (so the backgrounds run over the whole host), then
cut to :data:`CONTEXT_S` before the window to :data:`TAIL_S` after it (:func:`trim_mix`), so they add training hops
where the movement is, not minutes of the host again.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from uspd.train.labels import MAJOR

#: The walker's window starts at least this far into the host (s): the backgrounds' 30 s rise has settled.
SETTLE_S = 30.0
#: Seconds of the host kept before the window and after it when a mix is cut (:func:`trim_mix`).
CONTEXT_S = 10.0
TAIL_S = 5.0
#: Percentile of a walker clip's band power (over its hops, per channel and band) taken as its noise floor.
FLOOR_PERCENTILE = 50.0
#: Only the walker's band powers this far above its floor are added (dB).
GATE_DB = 10.0
#: A walker's motion hop counts (carries loss) only where it raises some channel's band by this much over the host
#: (dB); elsewhere the host's confuser masks it, and it is flagged ``edge`` (ambiguous, weight 0) like a motion's ends.
VISIBLE_DB = 3.0
#: A host has a confuser or a pet active on at least this share of its hops.
HOST_ACTIVE_SHARE = 0.5

_FLAGS = ("presence", "pet", "far", "edge")


def is_walker(clip: dict[str, Any]) -> bool:
    """A clip with at least one hop of major motion."""
    return bool((clip["motion"] == MAJOR).any())


def is_host(clip: dict[str, Any], hop_s: float = 0.05) -> bool:
    """A clip without motion, at least SETTLE_S + CONTEXT_S long, with a confuser or a pet on most of its hops."""
    active = (clip["confusers"] != 0) | clip["pet"]
    return (not (clip["motion"] > 0).any() and len(clip["motion"]) * hop_s >= SETTLE_S + CONTEXT_S
            and float(active.mean()) >= HOST_ACTIVE_SHARE)


def add_above_floor_db(host_db: np.ndarray, walker_db: np.ndarray, window: slice) -> np.ndarray:
    """host (F, C, B) band powers in dB with walker (n, C, B) added over ``window`` (n hops); float32 dB.

    Floors are per channel and band, the FLOOR_PERCENTILE th percentile over each clip's hops. Each walker channel
    is shifted by one gain (the median over bands of the host's floor minus the walker's), so its noise lies on the
    host's noise while a host's confuser stays above it and can mask the walker, as in one room. Only the walker's
    band powers more than GATE_DB above its own floor are added (in linear power), so its noise does not raise the
    host's floor in the window (which would mark where the walker was laid)."""
    host = host_db.astype(np.float64)
    walker = walker_db.astype(np.float64)
    walker_floor = np.percentile(walker, FLOOR_PERCENTILE, axis=0, keepdims=True)  # (1, C, B)
    gain_db = np.median(np.percentile(host, FLOOR_PERCENTILE, axis=0, keepdims=True) - walker_floor, axis=2,
                        keepdims=True)  # (1, C, 1)
    extra = np.where(walker > walker_floor + GATE_DB, 10.0 ** ((walker + gain_db) / 10.0), 0.0)
    out = host.copy()
    out[window] = 10.0 * np.log10(10.0 ** (host[window] / 10.0) + extra)
    return out.astype(np.float32)


def overlay_clip(walker: dict[str, Any], host: dict[str, Any], offset: int) -> dict[str, Any]:
    """The host with the walker's whole clip laid over it from hop ``offset`` (see the module doc). Band features
    ``x`` (F, C, B) and, if both have them, echo features ``e`` (F, K, B, same carriers K)."""
    n = len(walker["x"])
    if offset < 0 or offset + n > len(host["x"]):
        raise ValueError(f"overlay: a {n}-hop walker does not fit in a {len(host['x'])}-hop host at hop {offset}")
    window = slice(offset, offset + n)
    c = min(walker["x"].shape[1], host["x"].shape[1])
    mix = {k: np.array(v, copy=True) for k, v in host.items() if k not in ("meta", "x", "e")}
    x = add_above_floor_db(host["x"][:, :c], walker["x"][:, :c], window)
    mix["x"] = x.astype(host["x"].dtype)
    rise_db = (x[window] - host["x"][window, :c].astype(np.float32)).max(axis=(1, 2))
    if "e" in host and "e" in walker:
        mix["e"] = add_above_floor_db(host["e"], walker["e"], window).astype(host["e"].dtype)
    for key in ("motion", "action", "distance_m"):
        mix[key][window] = walker[key]
    for key in _FLAGS:
        mix[key][window] |= walker[key]
    mix["confusers"][window] |= walker["confusers"]
    mix["edge"][window] |= (walker["motion"] > 0) & (rise_db < VISIBLE_DB)  # masked by the host: no loss
    mix["meta"] = {**host.get("meta", {}), "n_mics": c,
                   "overlay": {"walker": walker.get("meta", {}).get("seed"),
                               "host": host.get("meta", {}).get("seed"), "offset_hops": int(offset),
                               "walker_hops": int(n)}}
    return mix


def overlay_clips(clips: list[dict[str, Any]], hours: float, seed: int, hop_s: float = 0.05) -> list[dict[str, Any]]:
    """Mixes of random walkers (:func:`is_walker`) over random hosts (:func:`is_host`) with as many echo carriers,
    each from a random hop at least SETTLE_S in and ending TAIL_S before the host does, until their cut length
    (:func:`trim_mix`) reaches ``hours``.
    Reproducible from ``seed``; [] if the clips hold no walker or no host."""
    walkers = [c for c in clips if is_walker(c)]
    hosts = [c for c in clips if is_host(c, hop_s)]
    if hours <= 0 or not walkers or not hosts:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4F564C]))
    settle, tail = round(SETTLE_S / hop_s), round(TAIL_S / hop_s)
    extra = round(CONTEXT_S / hop_s) + tail
    host_len = np.array([len(h["x"]) for h in hosts])
    host_k = np.array([h["e"].shape[1] if "e" in h else -1 for h in hosts])
    mixes: list[dict[str, Any]] = []
    hops, goal = 0, hours * 3600.0 / hop_s
    for _ in range(100 * len(walkers) + 1000):  # bounded: walkers that fit no host are skipped
        if hops >= goal:
            break
        walker = walkers[int(rng.integers(len(walkers)))]
        n, k = len(walker["x"]), walker["e"].shape[1] if "e" in walker else -1
        fits = np.flatnonzero((host_len >= settle + n + tail) & (host_k == k))
        if not len(fits):
            continue
        host = hosts[int(fits[rng.integers(len(fits))])]
        mixes.append(overlay_clip(walker, host, int(rng.integers(settle, len(host["x"]) - n - tail + 1))))
        hops += n + extra  # its length once cut
    return mixes


def trim_mix(mix: dict[str, Any], hop_s: float = 0.05) -> dict[str, Any]:
    """A mix cut to CONTEXT_S before its walker's window to TAIL_S after it (every per-hop array; after the model
    inputs were computed over the whole host, so the cut keeps their settled backgrounds)."""
    info = mix["meta"]["overlay"]
    start = max(0, info["offset_hops"] - round(CONTEXT_S / hop_s))
    stop = info["offset_hops"] + info["walker_hops"] + round(TAIL_S / hop_s)
    return {k: (v if k == "meta" else v[start:stop].copy()) for k, v in mix.items()}  # not views of the host
