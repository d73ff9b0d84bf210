"""Things that move in the room. Each mover is a set of point reflectors with analytic trajectories.

A mover gives, for any times ``t`` (T,) in seconds of audio time: ``positions(t) -> (P, T, 3)`` room coordinates
and ``gains(t, pos) -> (P, T)`` linear amplitude factors (visibility, blade flashes); ``ts_db`` (P,) is each
point's target strength (dB re 1 m^2, so an echo has amplitude 10^(TS/20) / (r1 r2)). The renderer computes every
echo from its own path length per mic, so the Doppler (and micro-Doppler) is physical. ``labels(duration_s)``
gives the ground-truth intervals. ``fast`` movers (fan blades) need the wider baseband rate.

Mover types and their keys (all optional; missing values are drawn from the render seed):

- ``person``: ``route`` = enter (door -> stop ``stop_distance_m`` from the device, then stand) | enter-leave (enter,
  visit 1-3 spots for ``stay_s``, leave through the door) | cross (stands at one side, crosses the room at
  ``start_s``) | approach (stands >= 3 m away, walks to 0.5-1 m) | wander (waypoints with pauses until the end) |
  far (moves only beyond 5 m) | seated (enters, sits at ``chair_distance_m``, breathes, does minor ``actions``
  (reach, page, typing, cup) every ``action_gap_s`` = [lo, hi]; stands up and leaves at ``leave_s`` if given) |
  still (seated from the start, breathing only); ``start_s``, ``speed_m_s`` (0.8-1.6), ``height_m`` (1.55-1.95),
  ``waypoints_m`` ([[x, y], ...] room coordinates; overrides the route) with ``pauses_s``. Body: torso (TS -18 dB),
  head, two arms and two legs swinging about the torso (Boulic et al. 1990-like gait: leg swing speed ~ walking
  speed, arms ~ half, stride 0.8-1.0 Hz, torso bob at twice the stride rate); breathing chest 3-8 mm at 0.2-0.3 Hz.
- ``fan``: ``kind`` desk|ceiling, ``position_m``, ``radius_m``, ``n_blades`` (3-5), ``tip_speed_m_s`` (desk 8-20,
  ceiling 6-14), ``oscillate_deg``, ``oscillate_period_s``, ``start_s``, ``end_s``. Three points per blade with
  blade-flash amplitude modulation; spin-up and spin-down ramps.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from uspd.recording.labels import LabelInterval
from uspd.simulate.kinematics import LazySchedule, LegPlan, merge_runs, min_jerk, ramped_distance, runs
from uspd.simulate.room import World
from uspd.simulate.scene import SceneError

#: Label time grid (s) and motion threshold (m/s).
LABEL_STEP_S = 0.05
MOTION_SPEED_M_S = 0.2
MAJOR_RANGE_M = 5.0


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_CHECKS = {
    float: (_num, "a number"),
    int: (lambda x: isinstance(x, int) and not isinstance(x, bool), "an integer"),
    str: (lambda x: isinstance(x, str), "a string"),
    bool: (lambda x: isinstance(x, bool), "true or false"),
    list: (lambda x: isinstance(x, list), "a list"),
}


class Mover:
    """Base class: a set of P point reflectors. Subclasses set ``ts_db`` and implement ``positions``."""

    type_name = ""
    #: allowed keys -> type; every mover also accepts start_s / end_s.
    PARAMS: dict[str, type] = {}
    fast = False
    kind: str | None = None  # confuser label kind for the active span

    def __init__(self, params: dict, world: World, rng: np.random.Generator, duration_s: float):
        self.p = dict(params)
        self.world = world
        self.rng = rng
        self.duration_s = duration_s
        self.start_s = float(self.p.get("start_s", 0.0))
        end = self.p.get("end_s")
        self.end_s = math.inf if end is None else float(end)
        self.ts_db = np.zeros(0)

    def param(self, key: str, draw) -> Any:
        """``self.p[key]`` if given, else ``draw()`` (recorded so the resolved scene can be written out)."""
        if self.p.get(key) is None:
            v = draw()
            self.p[key] = v.tolist() if isinstance(v, np.ndarray) else v
        return self.p[key]

    def positions(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gains(self, t: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return self.world.visibility(pos)

    def active_interval(self) -> tuple[float, float]:
        end = min(self.end_s, self.duration_s)
        return self.start_s, end

    def labels(self) -> list[LabelInterval]:
        if self.kind is None:
            return []
        t0, t1 = self.active_interval()
        if t1 <= t0:
            return []
        return [LabelInterval(t0, t1, self.kind)]


# ------------------------------------------------------------------------------------------------------ person

#: Body points of a person, in this order, and their target strengths (dB re 1 m^2).
PERSON_POINTS = ("torso", "head", "hand_l", "hand_r", "leg_l", "leg_r", "page", "cup")
PERSON_TS_DB = np.array([-18.0, -27.0, -28.0, -28.0, -24.0, -24.0, -30.0, -28.0])
ROUTES = ("enter", "enter-leave", "cross", "approach", "wander", "far", "seated", "still")
ACTIONS = ("reach", "page", "typing", "cup")


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


class Person(Mover):
    type_name = "person"
    PARAMS = {"route": str, "start_s": float, "end_s": float, "speed_m_s": float, "height_m": float,
              "stop_distance_m": float, "stay_s": float, "chair_distance_m": float, "actions": list,
              "action_gap_s": list, "leave_s": float, "waypoints_m": list, "pauses_s": list,
              "stride_hz": float, "breath_mm": float, "breath_hz": float}

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        route = self.param("route", lambda: "enter")
        if route not in ROUTES:
            raise SceneError(f"person.route: unknown route {route!r} (use {', '.join(ROUTES)})")
        self.route = route
        self.start_s = self.param("start_s", lambda: round(float(rng.uniform(0.5, 3.0)), 2))
        self.speed = self.param("speed_m_s", lambda: round(float(rng.uniform(0.8, 1.6)), 2))
        self.height = self.param("height_m", lambda: round(float(rng.uniform(1.55, 1.95)), 2))
        self.stride_hz = self.param("stride_hz", lambda: round(float(rng.uniform(0.8, 1.0)), 3))
        self.breath_m = self.param("breath_mm", lambda: round(float(rng.uniform(3, 8)), 2)) * 1e-3
        self.breath_hz = self.param("breath_hz", lambda: round(float(rng.uniform(0.2, 0.3)), 3))
        self.breath_phase = rng.uniform(0, 2 * math.pi)
        self.sway = rng.uniform(0.001, 0.004, 2), rng.uniform(0.05, 0.3, 2), rng.uniform(0, 2 * math.pi, 2)
        self.arm_amp = rng.uniform(0.4, 0.7) * self.speed / (2 * math.pi * self.stride_hz)
        self.leg_amp = rng.uniform(0.8, 1.1) * self.speed / (2 * math.pi * self.stride_hz)
        self.ts_db = PERSON_TS_DB + rng.uniform(-2, 2, len(PERSON_TS_DB))
        self.walk_b: LegPlan | None = None
        self.seat: tuple[float, float, float, float] | None = None  # sit0, sit1, stand0, stand1
        self.chair = None
        self.has_table = False
        self._plan(rng)
        self.actions: LazySchedule | None = None
        if self.seat is not None and route == "seated":
            allowed = self.param("actions", lambda: list(ACTIONS))
            bad = [a for a in allowed if a not in ACTIONS]
            if bad:
                raise SceneError(f"person.actions: unknown action(s) {bad} (use {', '.join(ACTIONS)})")
            gap = self.param("action_gap_s", lambda: [3.0, 10.0])
            if allowed:
                self.actions = LazySchedule(np.random.default_rng(rng.integers(1 << 62)), self.seat[1] + 1.0,
                                            lambda r, after: self._draw_action(r, after, allowed, gap),
                                            until_s=self.seat[2] - 1.0)

    # ---- route planning
    def _plan(self, rng: np.random.Generator) -> None:
        w = self.world
        dev = w.device_position_m[:2]
        out_pt, in_pt = w.door_points()
        route = self.route
        speed = self.speed
        if self.p.get("waypoints_m"):
            wp = np.array(self.p["waypoints_m"], dtype=float)
            pauses = list(self.p.get("pauses_s") or [])
            self.walk_a = LegPlan(wp, speed, pauses, self.start_s)
            return
        if route in ("enter", "cross", "approach", "wander"):
            if route == "enter":
                d = self.param("stop_distance_m", lambda: round(float(rng.uniform(0.8, 3.0)), 2))
                wp = [out_pt, in_pt, w.point_at_distance(rng, d)]
            elif route == "cross":
                a = w.clamp_inside(rng.uniform([0, 0], w.size_m[:2]), 0.5)
                b = w.clamp_inside(w.size_m[:2] - a + rng.normal(0, 0.3, 2), 0.5)
                wp = [a, b]
            elif route == "approach":
                far = w.point_at_distance(rng, max(3.0, 0.8 * float(np.max(w.size_m[:2]))))
                wp = [far, w.point_at_distance(rng, float(rng.uniform(0.5, 1.0)))]
            else:
                wp = [w.clamp_inside(rng.uniform([0, 0], w.size_m[:2]), 0.4) for _ in range(6)]
            pauses = [0.0] + [float(rng.uniform(0.5, 4.0)) for _ in range(len(wp) - 1)]
            self.walk_a = LegPlan(np.array(wp), speed, pauses, self.start_s)
        elif route == "enter-leave":
            stay = self.param("stay_s", lambda: round(float(rng.uniform(5.0, 20.0)), 2))
            n = int(rng.integers(1, 4))
            spots = [w.point_at_distance(rng, float(rng.uniform(0.8, 4.0))) for _ in range(n)]
            wp = [out_pt, in_pt, *spots, in_pt, out_pt]
            pauses = [0.0, 0.0] + [stay / n] * n + [0.0, 0.0]
            self.walk_a = LegPlan(np.array(wp), speed, pauses, self.start_s)
        elif route == "far":
            pts = []
            for _ in range(400):
                q = w.clamp_inside(rng.uniform([0, 0], w.size_m[:2]), 0.4)
                if np.linalg.norm(np.append(q, 1.2) - w.device_position_m) > MAJOR_RANGE_M + 0.4:
                    pts.append(q)
                if len(pts) == 5:
                    break
            if len(pts) < 2:
                raise SceneError("person.route far: the room has no floor area beyond 5 m from the device "
                                 "(use a larger room.size_m or move room.device_position_m)")
            pauses = [0.0] + [float(rng.uniform(0.5, 3.0)) for _ in range(len(pts) - 1)]
            self.walk_a = LegPlan(np.array(pts), min(speed, 1.2), pauses, self.start_s)
        else:  # seated / still
            d = self.param("chair_distance_m", lambda: round(float(rng.uniform(0.6, 2.5)), 2))
            chair = w.point_at_distance(rng, d, margin=0.5)
            face = math.atan2(*(dev - chair)[::-1]) + rng.uniform(-0.7, 0.7)
            self.chair = (chair, face)
            self.has_table = True
            front = chair + 0.5 * _unit(np.array(face + math.pi))
            if route == "still":
                self.walk_a = LegPlan(np.array([front, chair]), speed, [0.0, 0.0], -100.0)
                self.seat = (-100.0, -99.0, math.inf, math.inf)
                return
            self.walk_a = LegPlan(np.array([out_pt, in_pt, front, chair]), speed, [0, 0, 0.3, 0], self.start_s)
            sit0 = self.walk_a.end_s
            leave = self.p.get("leave_s")
            stand0 = math.inf if leave is None else max(float(leave), sit0 + 3.0)
            self.seat = (sit0, sit0 + 1.2, stand0, stand0 + 1.2)
            if leave is not None:
                self.walk_b = LegPlan(np.array([chair, front, in_pt, out_pt]), speed, [0, 0.3, 0, 0],
                                      stand0 + 1.2)

    def _draw_action(self, rng: np.random.Generator, after: float, allowed: list[str], gap: list[float]):
        t0 = after + rng.uniform(gap[0], gap[1])
        kind = str(rng.choice(allowed))
        side = 1.0 if rng.random() < 0.75 else -1.0
        if kind == "reach":
            dur, hold = rng.uniform(0.5, 1.5), rng.uniform(0.3, 1.5)
            ang = rng.uniform(-1.0, 1.0)
            dist = rng.uniform(0.1, 0.4)
            payload = {"T": dur, "hold": hold, "ang": ang, "dist": dist, "dz": rng.uniform(-0.05, 0.15),
                       "side": side}
            total = 2 * dur + hold
        elif kind == "page":
            r = rng.uniform(0.08, 0.15)
            v = rng.uniform(0.05, 0.2)
            dur = float(np.clip(math.pi * r / v, 0.6, 6.0))
            payload = {"T": dur, "r": r}
            total = dur + 0.5
        elif kind == "typing":
            total = rng.uniform(3.0, 10.0)
            rate = rng.uniform(5.0, 8.0)
            n = int(total * rate)
            payload = {"taps": t0 + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / rate,
                       "hand": rng.integers(0, 2, n), "depth": rng.uniform(0.002, 0.004)}
        else:  # cup
            dur, hold = rng.uniform(0.8, 1.5), rng.uniform(1.0, 3.0)
            payload = {"T": dur, "hold": hold, "up": rng.uniform(0.15, 0.25), "back": rng.uniform(0.1, 0.2)}
            total = 2 * dur + hold
        return (t0, t0 + total, (kind, payload))

    # ---- poses
    def _breath(self, t: np.ndarray) -> np.ndarray:
        return 0.5 * self.breath_m * np.sin(2 * math.pi * self.breath_hz * t + self.breath_phase
                                            + 0.3 * np.sin(2 * math.pi * 0.013 * t))

    def _standing(self, plan: LegPlan, t: np.ndarray) -> np.ndarray:
        xy, speed, dist, heading = plan.eval(t)
        h = self.height
        u = _unit(heading)                         # (T, 2) forward
        v = np.stack([-u[:, 1], u[:, 0]], axis=1)  # left
        g = speed / max(self.speed, 1e-6)
        psi = 2 * math.pi * self.stride_hz * dist / max(self.speed, 1e-6)
        amp, fr, ph = self.sway
        sway = amp[0] * np.sin(2 * math.pi * fr[0] * t + ph[0])
        base = xy + v * sway[:, None] + u * self._breath(t)[:, None]
        bob = 0.02 * g * np.cos(2 * psi)
        pts = np.empty((len(PERSON_POINTS), len(t), 3))

        def put(i, xy_, z):
            pts[i, :, :2] = xy_
            pts[i, :, 2] = z

        put(0, base, 0.72 * h + bob)
        put(1, base, 0.93 * h + bob)
        for i, side, phase in ((2, 1, 0.0), (3, -1, math.pi)):
            put(i, xy + v * (0.2 * side) + u * (self.arm_amp * g * np.sin(psi + phase))[:, None], 0.48 * h)
        for i, side, phase in ((4, 1, math.pi), (5, -1, 0.0)):
            lift = 0.04 * g * np.maximum(0, np.sin(psi + phase + math.pi / 2))
            put(i, xy + v * (0.1 * side) + u * (self.leg_amp * g * np.sin(psi + phase))[:, None], 0.28 * h + lift)
        self._table_points(pts, t)
        return pts

    def _table_points(self, pts: np.ndarray, t: np.ndarray) -> None:
        if self.chair is None:
            pts[6:] = self.world.device_position_m  # unused (zero gain)
            return
        chair, face = self.chair
        u, v = _unit(np.array(face)), _unit(np.array(face + math.pi / 2))
        pts[6, :, :2] = chair + 0.45 * u - 0.12 * v
        pts[6, :, 2] = 0.76
        pts[7, :, :2] = chair + 0.4 * u - 0.25 * v
        pts[7, :, 2] = 0.80

    def _seated(self, t: np.ndarray) -> np.ndarray:
        chair, face = self.chair
        h = self.height
        u, v = _unit(np.array(face)), _unit(np.array(face + math.pi / 2))
        n = len(t)
        pts = np.empty((len(PERSON_POINTS), n, 3))
        amp, fr, ph = self.sway
        sway = amp[:, None] * 0.5 * np.sin(2 * math.pi * fr[:, None] * t + ph[:, None])  # (2, T)
        br = self._breath(t)
        torso = chair + u * (br + sway[0])[:, None] + v * sway[1][:, None]
        pts[0, :, :2], pts[0, :, 2] = torso, 0.57 * h
        pts[1, :, :2], pts[1, :, 2] = torso + u * 0.03, 0.78 * h
        hand_rest = [chair + 0.35 * u + 0.15 * v, chair + 0.35 * u - 0.15 * v]
        for i in (2, 3):
            pts[i, :, :2], pts[i, :, 2] = hand_rest[i - 2], 0.75
        for i, s in ((4, 1), (5, -1)):
            pts[i, :, :2], pts[i, :, 2] = chair + 0.3 * u + 0.1 * s * v, 0.45
        self._table_points(pts, t)
        if self.actions is not None and n:
            for t0, t1, (kind, pl) in self.actions.between(float(t[0]), float(t[-1]) + 1e-9):
                self._apply_action(pts, t, t0, kind, pl, u, v)
        return pts

    def _apply_action(self, pts, t, t0, kind, pl, u, v) -> None:
        m = (t >= t0 - 0.5) & (t <= t0 + 15.0)
        if not m.any():
            return
        tt = t[m] - t0
        if kind == "reach":
            d = pl["dist"] * np.array([*(math.cos(pl["ang"]) * u + math.sin(pl["ang"]) * v), 0.0])
            d[2] = pl["dz"]
            s = min_jerk(tt / pl["T"]) - min_jerk((tt - pl["T"] - pl["hold"]) / pl["T"])
            hand = 3 if pl["side"] > 0 else 2
            pts[hand, m] += s[:, None] * d
        elif kind == "page":
            r = pl["r"]
            phi = math.pi * min_jerk(tt / pl["T"])
            spine = pts[6, m].copy()
            spine[:, :2] += r * v  # the page edge rests at the spine + r to the right (v points left)
            edge = spine.copy()
            edge[:, :2] += -np.cos(phi)[:, None] * r * v
            edge[:, 2] += np.sin(phi) * r
            disp = edge - pts[6, m]
            back = 1.0 - min_jerk((tt - pl["T"]) / 0.5)
            pts[6, m] = edge
            pts[3, m] += disp * back[:, None]
        elif kind == "typing":
            taps, hands, depth = pl["taps"], pl["hand"], pl["depth"]
            sel = (taps > t[m][0] - 0.2) & (taps < t[m][-1] + 0.2)
            for tk, hk in zip(taps[sel], hands[sel]):
                x = (t[m] - tk) / 0.1
                bump = np.where(np.abs(x) < 0.5, np.cos(math.pi * x) ** 2, 0.0)
                pts[2 + hk, m, 2] -= depth * bump
        else:  # cup
            s = min_jerk(tt / pl["T"]) - min_jerk((tt - pl["T"] - pl["hold"]) / pl["T"])
            d = np.array([*(-pl["back"] * u), pl["up"]])
            pts[7, m] += s[:, None] * d
            pts[3, m] += s[:, None] * d

    def positions(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.seat is None:
            return self._standing(self.walk_a, t)
        sit0, sit1, stand0, stand1 = self.seat
        lam = min_jerk((t - sit0) / (sit1 - sit0))
        if math.isfinite(stand0):
            lam = lam * (1.0 - min_jerk((t - stand0) / (stand1 - stand0)))
        out = np.empty((len(PERSON_POINTS), len(t), 3))
        before = t < stand0
        if before.any():
            out[:, before] = self._standing(self.walk_a, t[before])
        if (~before).any():
            plan = self.walk_b if self.walk_b is not None else self.walk_a
            out[:, ~before] = self._standing(plan, t[~before])
        sm = lam > 0
        if sm.any():
            q = self._seated(t[sm])
            out[:, sm] = out[:, sm] * (1 - lam[sm])[None, :, None] + q * lam[sm][None, :, None]
        return out

    def gains(self, t: np.ndarray, pos: np.ndarray) -> np.ndarray:
        vis = self.world.visibility(pos[0])[None, :]
        g = np.repeat(vis, len(PERSON_POINTS), axis=0)
        if not self.has_table:
            g[6:] = 0.0
        else:
            g[6:] = 1.0  # table objects stay in the room
            if self.actions is not None and len(t):
                g[6] = 0.0
                for t0, t1, (kind, pl) in self.actions.between(float(t[0]), float(t[-1]) + 1e-9):
                    if kind == "page":
                        g[6] = np.maximum(g[6], np.sin(math.pi * min_jerk((t - t0) / pl["T"])))
        return g

    def labels(self) -> list[LabelInterval]:
        dur = self.duration_s
        if not math.isfinite(dur):
            return []
        t = np.arange(0.0, dur + 1e-9, LABEL_STEP_S)
        torso = self.positions(t)[0]
        step = np.diff(torso, axis=0, prepend=torso[:1]) / LABEL_STEP_S
        k = 5
        speed = np.convolve(np.linalg.norm(step, axis=1), np.ones(k) / k, mode="same")
        vis = self.world.visibility(torso) > 0.5
        dist = self.world.distance_to_device(torso)
        moving = speed > MOTION_SPEED_M_S
        out: list[LabelInterval] = []
        gap = int(round(0.3 / LABEL_STEP_S))
        for kind, mask in (("major", vis & moving & (dist <= MAJOR_RANGE_M)),
                           ("far", vis & (dist > MAJOR_RANGE_M)),
                           ("presence", vis & ~moving & (dist <= MAJOR_RANGE_M))):
            for a, b in merge_runs(runs(mask), gap, min_len=2 if kind != "presence" else 1):
                out.append(LabelInterval(float(t[a]), float(min(t[b - 1] + LABEL_STEP_S, dur)), kind,
                                         distance_m=float(dist[a:b].min())))
        if self.actions is not None:
            for t0, t1, (kind, _pl) in self.actions.all_until(dur):
                if t1 > dur:
                    continue
                tt = np.linspace(t0, t1, 20)
                hand = self.positions(tt)[2:4]
                d = float(self.world.distance_to_device(hand).min())
                out.append(LabelInterval(float(t0), float(t1), "minor", distance_m=d, action=kind))
        out.sort(key=lambda iv: iv.start_s)
        return out


# ------------------------------------------------------------------------------------------------------ fan

class Fan(Mover):
    type_name = "fan"
    kind = "fan"
    fast = True
    PARAMS = {"kind": str, "position_m": list, "radius_m": float, "n_blades": int, "tip_speed_m_s": float,
              "oscillate_deg": float, "oscillate_period_s": float, "start_s": float, "end_s": float,
              "yaw_deg": float, "ts_db": float}
    RADII = (0.4, 0.7, 1.0)

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        kind = self.param("kind", lambda: "desk")
        if kind not in ("desk", "ceiling"):
            raise SceneError(f"fan.kind: must be desk or ceiling, got {kind!r}")
        w = world
        self.ceiling = kind == "ceiling"
        if self.ceiling:
            pos = self.param("position_m", lambda: [*np.round(w.clamp_inside(
                rng.uniform([0, 0], w.size_m[:2]), 1.0), 3).tolist(), round(float(w.size_m[2] - 0.3), 3)])
            self.radius = self.param("radius_m", lambda: round(float(rng.uniform(0.5, 0.7)), 3))
            tip = self.param("tip_speed_m_s", lambda: round(float(rng.uniform(6.0, 14.0)), 2))
            self.osc = math.radians(self.param("oscillate_deg", lambda: 0.0))
            ramp = 8.0
            ts = self.param("ts_db", lambda: round(float(rng.uniform(-30, -24)), 1))
        else:
            d = float(rng.uniform(1.0, 4.0))
            pos = self.param("position_m", lambda: [*np.round(w.point_at_distance(rng, d, 0.4), 3).tolist(),
                                                    round(float(rng.uniform(0.6, 1.2)), 3)])
            self.radius = self.param("radius_m", lambda: round(float(rng.uniform(0.12, 0.22)), 3))
            tip = self.param("tip_speed_m_s", lambda: round(float(rng.uniform(8.0, 20.0)), 2))
            self.osc = math.radians(self.param("oscillate_deg", lambda: 0.0 if rng.random() < 0.3
                                               else round(float(rng.uniform(15, 45)), 1)))
            ramp = 4.0
            ts = self.param("ts_db", lambda: round(float(rng.uniform(-34, -28)), 1))
        self.hub = np.array(pos, dtype=float)
        self.n_blades = self.param("n_blades", lambda: int(rng.integers(3, 6)))
        self.omega = tip / self.radius
        self.period = self.param("oscillate_period_s", lambda: round(float(rng.uniform(8, 20)), 2))
        to_dev = w.device_position_m[:2] - self.hub[:2]
        self.yaw0 = math.radians(self.param("yaw_deg", lambda: round(math.degrees(
            math.atan2(to_dev[1], to_dev[0]) + rng.uniform(-0.8, 0.8)), 1)))
        self.phase0 = rng.uniform(0, 2 * math.pi)
        self.osc_phase = rng.uniform(0, 2 * math.pi)
        self.ramp = ramp
        self.ts_db = np.full(self.n_blades * len(self.RADII), float(ts))
        los = w.device_position_m - self.hub
        self.los = los / np.linalg.norm(los)

    def _angle(self, t: np.ndarray) -> np.ndarray:
        cruise = (self.end_s - self.start_s - self.ramp) if math.isfinite(self.end_s) else 1e12
        d, _ = ramped_distance(t - self.start_s, self.ramp, max(cruise, 0.0), self.omega)
        return self.phase0 + d

    def _rotor(self, t: np.ndarray, blade_angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit radial vectors (B, T, 3) of the blades."""
        if self.ceiling:
            e1 = np.array([1.0, 0.0, 0.0])[None, :]
            e2 = np.array([0.0, 1.0, 0.0])[None, :]
        else:
            yaw = self.yaw0 + self.osc * np.sin(2 * math.pi * t / self.period + self.osc_phase)
            e1 = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1)
            e2 = np.broadcast_to(np.array([0.0, 0.0, 1.0]), e1.shape)
        return np.cos(blade_angle)[..., None] * e1 + np.sin(blade_angle)[..., None] * e2

    def positions(self, t: np.ndarray) -> np.ndarray:
        ang = self._angle(np.asarray(t, float))
        blades = ang[None, :] + 2 * math.pi * np.arange(self.n_blades)[:, None] / self.n_blades
        rho = self._rotor(t, blades)                                    # (B, T, 3)
        r = self.radius * np.array(self.RADII)
        pts = self.hub + r[None, :, None, None] * rho[:, None]          # (B, R, T, 3)
        return pts.reshape(-1, len(t), 3)

    def gains(self, t: np.ndarray, pos: np.ndarray) -> np.ndarray:
        ang = self._angle(np.asarray(t, float))
        blades = ang[None, :] + 2 * math.pi * np.arange(self.n_blades)[:, None] / self.n_blades
        rho = self._rotor(t, blades)
        c = rho @ self.los                                              # (B, T)
        flash = 0.15 + 0.85 * np.exp(-(c * c) / (2 * 0.15 ** 2))
        return np.repeat(flash, len(self.RADII), axis=0)


# ------------------------------------------------------------------------------------------------------ registry

MOVER_TYPES: dict[str, type[Mover]] = {"person": Person, "fan": Fan}


def validate_mover(type_name: str, params: dict, where: str) -> None:
    """Check a mover's type and keys (types only; ranges are checked when it is built)."""
    cls = MOVER_TYPES.get(type_name)
    if cls is None:
        raise SceneError(f"{where}.type: unknown mover type {type_name!r} (use {', '.join(MOVER_TYPES)})")
    allowed = dict(cls.PARAMS)
    allowed.setdefault("start_s", float)
    allowed.setdefault("end_s", float)
    for k, v in params.items():
        if k not in allowed:
            raise SceneError(f"{where}: unknown key {k!r} for a {type_name} (known: {', '.join(sorted(allowed))})")
        ok, what = _CHECKS[allowed[k]]
        if v is not None and not ok(v):
            raise SceneError(f"{where}.{k}: expected {what}, got {v!r}")


def build_movers(specs, world: World, seed: int, duration_s: float) -> list[Mover]:
    """Instantiate the scene's movers; mover i draws its details from rng(seed, 2, i)."""
    out = []
    for i, m in enumerate(specs):
        rng = np.random.default_rng([seed, 2, i])
        out.append(MOVER_TYPES[m.type](m.params, world, rng, duration_s))
    return out
