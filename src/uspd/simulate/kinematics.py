"""Analytic trajectories: smooth walks through waypoints, minimum-jerk moves, lazy event schedules.

Everything is a vectorised function of absolute audio time, so a renderer can evaluate any block in any order and
get the same numbers (bit-identical output regardless of block splitting).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile 10u^3 - 15u^4 + 6u^5 for u clipped to [0, 1] (Flash & Hogan, J. Neurosci.
    5(7), 1985): zero velocity and acceleration at both ends, peak speed 1.875x the mean."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


def ramped_distance(tau: np.ndarray, ramp_s: float, cruise_s: float, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance and speed along a move that accelerates with a raised-cosine speed ramp of ``ramp_s``, cruises at
    ``speed`` for ``cruise_s`` and decelerates symmetrically. tau: time since the start (clipped to the move).

    Returns (distance (m), speed (m/s)) arrays shaped like ``tau``; total distance = speed (ramp_s + cruise_s).
    """
    ta, tc, v = ramp_s, cruise_s, speed
    tau = np.clip(tau, 0.0, 2 * ta + tc)
    d = np.empty_like(tau)
    s = np.empty_like(tau)
    a = tau < ta
    w = math.pi / ta
    d[a] = v * (tau[a] / 2 - np.sin(w * tau[a]) / (2 * w))
    s[a] = v * (1 - np.cos(w * tau[a])) / 2
    b = (tau >= ta) & (tau < ta + tc)
    d[b] = v * ta / 2 + v * (tau[b] - ta)
    s[b] = v
    c = tau >= ta + tc
    u = tau[c] - ta - tc
    d[c] = v * ta / 2 + v * tc + v * (u / 2 + np.sin(w * u) / (2 * w))
    s[c] = v * (1 + np.cos(w * u)) / 2
    return d, s


class LegPlan:
    """A walk through floor waypoints (K, 2): each leg starts and ends at rest (raised-cosine speed ramps of
    ``ramp_s``), cruises at ``speed_m_s``; ``pauses_s[k]`` is the wait at waypoint k before leaving it.

    ``eval(t)`` gives floor position (T, 2), speed (T,), cumulative distance walked (T,) and heading angle (T,)
    (rad; it turns smoothly towards the next leg during that leg's first ramp).
    """

    def __init__(self, waypoints: np.ndarray, speed_m_s: float, pauses_s: list[float] | np.ndarray,
                 start_s: float, ramp_s: float = 0.8):
        self.wp = np.asarray(waypoints, dtype=float).reshape(-1, 2)
        k = len(self.wp)
        pauses = np.zeros(k)
        pauses[: len(pauses_s)] = np.asarray(pauses_s, dtype=float)[:k]
        self.start_s = float(start_s)
        legs = []
        t = self.start_s + pauses[0]
        cum = 0.0
        prev_ang = None
        for i in range(k - 1):
            p0, p1 = self.wp[i], self.wp[i + 1]
            vec = p1 - p0
            length = float(np.hypot(*vec))
            if length < 1e-6:
                t += pauses[i + 1]
                continue
            ta = ramp_s
            v = speed_m_s
            if length < v * ta:
                v = length / ta
            tc = length / v - ta
            ang = math.atan2(vec[1], vec[0])
            if prev_ang is None:
                prev_ang = ang
            turn = (ang - prev_ang + math.pi) % (2 * math.pi) - math.pi
            legs.append((t, ta, tc, v, p0, vec / length, cum, prev_ang, turn))
            cum += length
            prev_ang = prev_ang + turn
            t += 2 * ta + tc + pauses[i + 1]
        self.legs = legs
        self.end_s = t - pauses[-1] if legs else self.start_s
        self.total_m = cum
        if not legs:
            self.final_heading = 0.0
        else:
            self.final_heading = legs[-1][7] + legs[-1][8]
        self._starts = np.array([lg[0] for lg in legs]) if legs else np.zeros(0)

    @property
    def initial_heading(self) -> float:
        return self.legs[0][7] if self.legs else 0.0

    def eval(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=float)
        n = t.shape[0]
        if not self.legs:
            pos = np.broadcast_to(self.wp[0], (n, 2)).copy()
            z = np.zeros(n)
            return pos, z, z.copy(), z.copy()
        idx = np.clip(np.searchsorted(self._starts, t, side="right") - 1, 0, len(self.legs) - 1)
        pos = np.empty((n, 2))
        speed = np.zeros(n)
        dist = np.empty(n)
        heading = np.empty(n)
        for i in range(int(idx.min()), int(idx.max()) + 1):
            m = idx == i
            if not m.any():
                continue
            t0, ta, tc, v, p0, u, cum, ang0, turn = self.legs[i]
            tau = t[m] - t0
            d, s = ramped_distance(tau, ta, tc, v)
            pos[m] = p0[None, :] + d[:, None] * u[None, :]
            speed[m] = s
            dist[m] = cum + d
            heading[m] = ang0 + turn * min_jerk(tau / ta)
        return pos, speed, dist, heading


class LazySchedule:
    """Events drawn one after another from one generator, extended on demand (finite or endless scenes).

    ``make(rng, after_s) -> (start_s, end_s, payload)`` draws the next event starting after ``after_s``.
    ``between(t0, t1)`` returns the events overlapping [t0, t1); the sequence never depends on the queries.
    """

    def __init__(self, rng: np.random.Generator, first_s: float, make: Callable, until_s: float = math.inf):
        self.rng = rng
        self.make = make
        self.until_s = until_s
        self.events: list[tuple[float, float, object]] = []
        self._next_after = first_s
        self._done = False

    def _extend(self, t: float) -> None:
        while not self._done and (not self.events or self.events[-1][0] < t):
            ev = self.make(self.rng, self._next_after)
            if ev is None or ev[0] >= self.until_s:
                self._done = True
                break
            self.events.append(ev)
            self._next_after = ev[1]

    def between(self, t0: float, t1: float, max_len_s: float = 60.0) -> list[tuple[float, float, object]]:
        self._extend(t1)
        return [e for e in self.events if e[0] < t1 and e[1] > t0 and e[0] > t0 - max_len_s]

    def all_until(self, t: float) -> list[tuple[float, float, object]]:
        self._extend(t)
        return [e for e in self.events if e[0] < t]


def random_sines(rng: np.random.Generator, n: int, f_lo: float, f_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies (n,), phases (n,)) for a smooth random process as a sum of sinusoids."""
    return rng.uniform(f_lo, f_hi, n), rng.uniform(0, 2 * math.pi, n)


def sum_sines(t: np.ndarray, amp: np.ndarray, freq: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """sum_k amp[..., k] sin(2 pi freq[..., k] t + phase[..., k]); amp/freq/phase (..., K), t (T,) -> (..., T)."""
    return np.einsum("...k,...kt->...t", amp,
                     np.sin(2 * math.pi * freq[..., None] * t + phase[..., None]))


def smooth_window(t: np.ndarray, start_s: float, end_s: float, ramp_s: float) -> np.ndarray:
    """0 before ``start_s``, 1 between, 0 after ``end_s``, raised-cosine ramps of ``ramp_s`` inside the span."""
    up = np.clip((t - start_s) / ramp_s, 0, 1)
    down = np.clip((end_s - t) / ramp_s, 0, 1)
    return np.sin(0.5 * math.pi * up) ** 2 * np.sin(0.5 * math.pi * down) ** 2


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``mask`` is true."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def merge_runs(r: list[tuple[int, int]], max_gap: int, min_len: int = 1) -> list[tuple[int, int]]:
    """Merge runs separated by fewer than ``max_gap`` samples, then drop runs shorter than ``min_len``."""
    out: list[list[int]] = []
    for a, b in r:
        if out and a - out[-1][1] < max_gap:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out if b - a >= min_len]
