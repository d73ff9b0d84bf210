"""Things that move in the room. Each mover is a set of point reflectors with analytic trajectories.

A mover gives, for any times ``t`` (T,) in seconds of audio time: ``positions(t) -> (P, T, 3)`` room coordinates
and ``gains(t, pos) -> (P, T)`` linear amplitude factors (visibility, blade flashes); ``ts_db`` (P,) is each
point's target strength (dB re 1 m^2, so an echo has amplitude 10^(TS/20) / (r1 r2)). The renderer computes every
echo from its own path length per mic, so the Doppler (and micro-Doppler) is physical. ``labels(duration_s)``
gives the ground-truth intervals. ``fast`` movers (fan blades) need the wider baseband rate. The large reflectors
(``bounce_points``: a person's torso and head, a pet's body, a vacuum's body) also echo via the six walls
(first-order image speakers), so a walker gives extra Doppler components from the room's multipath.

Mover types and their keys (all optional; missing values are drawn from the render seed):

- ``person``: ``route`` = enter (door -> stop ``stop_distance_m`` from the device, then stand) | enter-leave (enter,
  move from spot to spot, stopping 1-4 s at each, for ``stay_s``, then leave through the door) | cross (stands at one side, crosses the room at
  ``start_s``) | approach (stands >= 3 m away, walks to 0.5-1 m) | wander (waypoints with pauses until the end) |
  far (moves only beyond 5 m) | seated (enters, sits at ``chair_distance_m``, breathes, does minor ``actions``
  (reach, page, typing, cup) every ``action_gap_s`` = [lo, hi]; stands up and leaves at ``leave_s`` if given) |
  still (seated from the start, breathing only); ``start_s``, ``speed_m_s`` (0.8-1.6), ``height_m`` (1.55-1.95),
  ``waypoints_m`` ([[x, y], ...] room coordinates; overrides the route) with ``pauses_s``. Body: torso (TS -18 dB),
  head, two arms and two legs swinging about the torso (Boulic et al. 1990-like gait: leg swing speed ~ walking
  speed, arms ~ half, stride 0.8-1.0 Hz, torso bob at twice the stride rate); breathing chest 3-8 mm at 0.2-0.3 Hz.
  ``swing_share`` (0.2-0.6, not drawn: ``uspd dataset --swing-share``) gives the feet a stance/swing gait instead:
  planted for the rest of each cycle, swinging at up to ~4x walking speed (:func:`stance_swing`).
- ``pet``: ``animal`` dog|cat, ``speed_m_s`` (0.3-1.5), ``waypoints_m``, ``pauses_s``, ``stride_hz``; wanders with
  pauses (label ``pet`` while it moves).
- ``curtain``: ``speed_m_s`` (RMS point speed 0.02-0.3), ``position_m``, ``width_m``, ``ts_db``, ``n_points``;
  ``plant``: the same for a plant/lamp in a draft (label ``curtain`` for both).
- ``vacuum``: ``speed_m_s`` (0.25-0.35), ``waypoints_m``; ``door``: ``n_swings``, ``times_s``, ``open_deg``,
  ``width_m`` (the room's door); ``hvac``: ``strength_rad``, ``n_paths``; ``keys``: ``n_events``, ``times_s``,
  ``level_dbfs`` (click peak at 1 m), ``position_m``.
- ``point``: one reflector through 3-D ``waypoints_m`` at ``speed_m_s``, ``ts_db``, ``ramp_s``; ``label`` (optional
  label kind for its active span).
- ``fan``: ``kind`` desk|ceiling, ``position_m``, ``radius_m``, ``n_blades`` (3-5), ``tip_speed_m_s`` (desk 8-20,
  ceiling 6-14), ``oscillate_deg``, ``oscillate_period_s``, ``start_s``, ``end_s``, ``ts_db`` (diffuse TS per point), ``flash_db`` (specular blade
  flash above it, when a blade lies perpendicular to the line of sight: a flat plate's peak TS
  10 log(A^2/lambda^2) is near 0 dB for a 15 x 5 cm blade at 40 kHz, but only within a few degrees). Four points per
  blade along the span (the flash spreads from near-zero Doppler to the tip's); spin-up and spin-down ramps.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from uspd.recording.labels import LabelInterval
from uspd.simulate.kinematics import (LazySchedule, LegPlan, merge_runs, min_jerk, ramped_distance, runs,
                                      smooth_window, sum_sines)
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
    #: indices of the points whose first-order wall bounces are rendered too (large reflectors: torso, body)
    bounce_points: tuple[int, ...] = ()

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
        """``self.p[key]`` if given, else ``draw()`` (recorded so the resolved scene can be written out).

        ``draw()`` runs either way, so a spec and its resolved copy consume the random stream identically."""
        v = draw()
        if self.p.get(key) is None:
            self.p[key] = v.tolist() if isinstance(v, np.ndarray) else v
        return self.p[key]

    def positions(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gains(self, t: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return self.world.visibility(pos)

    def geometry(self, t: np.ndarray, origin: np.ndarray, offsets: np.ndarray, with_dots: bool,
                 images: np.ndarray | None = None):
        """What the renderer needs at times t: speaker range r1 (P, T), echo gain 10^(TS/20) x gains (P, T),
        (if ``with_dots``) d . o_m (M, P, T) for the mic offsets o_m (M, 3), d = point - origin (the speaker), and
        (if ``images`` (W, 3) is given) the ranges (W, len(bounce_points), T) of the bounce points from the image
        speakers, else None."""
        pos = self.positions(t)
        gain = self.gains(t, pos) * (10 ** (self.ts_db / 20))[:, None]
        d = pos - origin
        r1 = np.sqrt(np.einsum("ptk,ptk->pt", d, d))
        dots = None
        if with_dots:
            dots = np.matmul(d.reshape(-1, 3), offsets.T).T.reshape((len(offsets),) + r1.shape)
        r_img = None
        if images is not None and self.bounce_points:
            b = pos[list(self.bounce_points)]                               # (B, T, 3)
            r_img = np.linalg.norm(b[None] - images[:, None, None, :], axis=-1)
        return r1, gain, dots, r_img

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
PERSON_POINTS = ("torso", "head", "elbow_l", "elbow_r", "hand_l", "hand_r", "knee_l", "knee_r", "foot_l", "foot_r",
                 "page", "cup")
PERSON_TS_DB = np.array([-18.0, -27.0, -31.0, -31.0, -30.0, -30.0, -27.0, -27.0, -28.0, -28.0, -30.0, -28.0])
(TORSO, HEAD, ELBOW_L, ELBOW_R, HAND_L, HAND_R, KNEE_L, KNEE_R, FOOT_L, FOOT_R, PAGE, CUP) = range(12)
HANDS = (HAND_L, HAND_R)
ROUTES = ("enter", "enter-leave", "cross", "approach", "wander", "far", "seated", "still")
ACTIONS = ("reach", "page", "typing", "cup")


#: Allowed ``swing_share`` of a person's stance/swing gait (walking: about 0.4 of the cycle; running > 0.5).
SWING_SHARE_RANGE = (0.2, 0.6)


def stance_swing(psi: np.ndarray, swing_share: float, stride_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A foot of a stance/swing gait: (forward offset from the body (T,) m, lift (T,) 0..1) at gait phase ``psi``
    (T,) rad (2 pi per cycle, advancing with the distance walked).

    The foot is planted for ``1 - swing_share`` of each cycle and covers the cycle's ``stride_m`` in the rest, on a
    half-sine speed profile: at a steady walking speed v its speed is 0 in stance and v pi / (2 s) sin(pi phi / s) in
    swing (phi the phase in cycles, s the swing share), peaking at 3.9 v for s = 0.4 (measured feet peak at 3-4x v).
    The offset has zero mean over a cycle, so the foot stays under the body on average."""
    phi = np.mod(psi / (2 * math.pi), 1.0)
    swinging = phi < swing_share
    travelled = np.where(swinging, 0.5 * (1.0 - np.cos(math.pi * phi / swing_share)), 1.0)  # 0..1 per cycle
    offset = stride_m * (travelled - phi - 0.5 * (1.0 - swing_share))
    return offset, np.where(swinging, np.sin(math.pi * phi / swing_share), 0.0)


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


class Person(Mover):
    type_name = "person"
    bounce_points = (TORSO, HEAD)
    PARAMS = {"route": str, "start_s": float, "end_s": float, "speed_m_s": float, "height_m": float,
              "stop_distance_m": float, "stay_s": float, "chair_distance_m": float, "actions": list,
              "action_gap_s": list, "leave_s": float, "waypoints_m": list, "pauses_s": list,
              "stride_hz": float, "breath_mm": float, "breath_hz": float, "swing_share": float}

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
        #: Share of the gait cycle a foot is in the air (stance/swing gait, :func:`stance_swing`); None: the feet
        #: swing sinusoidally about the torso. Not drawn here (a scene factor sets it), so the stream is unchanged.
        self.swing_share = self.p.get("swing_share")
        if self.swing_share is not None:
            if not SWING_SHARE_RANGE[0] <= self.swing_share <= SWING_SHARE_RANGE[1]:  # a number: validate_mover
                raise SceneError(f"person.swing_share: must be a number in {SWING_SHARE_RANGE[0]:g}.."
                                 f"{SWING_SHARE_RANGE[1]:g}, got {self.swing_share!r}")
            self.swing_share = float(self.swing_share)
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
            # moves about the room for ``stay_s`` (spot to spot, stopping 1-4 s at each), then leaves
            stay = self.param("stay_s", lambda: round(float(rng.uniform(5.0, 20.0)), 2))
            spots, pauses, used, here = [], [], 0.0, in_pt
            while used < stay or not spots:
                spot = w.point_at_distance(rng, float(rng.uniform(0.8, 4.0)))
                pause = float(rng.uniform(1.0, 4.0))
                spots.append(spot)
                pauses.append(pause)
                used += pause + np.linalg.norm(spot - here) / speed + 1.0
                here = spot
            wp = [out_pt, in_pt, *spots, in_pt, out_pt]
            self.walk_a = LegPlan(np.array(wp), speed, [0.0, 0.0] + pauses + [0.0, 0.0], self.start_s)
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

        put(TORSO, base, 0.72 * h + bob)
        put(HEAD, base, 0.93 * h + bob)
        # limbs swing about the torso: elbow/knee half as far as hand/foot (a limb is a pendulum from the
        # shoulder/hip), so each limb spreads its echo from the torso's Doppler out to the extremity's
        for side, phase, elbow, hand, knee, foot in ((1, 0.0, ELBOW_L, HAND_L, KNEE_R, FOOT_R),
                                                     (-1, math.pi, ELBOW_R, HAND_R, KNEE_L, FOOT_L)):
            arm = (self.arm_amp * g * np.sin(psi + phase))[:, None] * u
            put(elbow, xy + v * (0.2 * side) + 0.5 * arm, 0.62 * h)
            put(hand, xy + v * (0.2 * side) + arm, 0.45 * h)
            if self.swing_share is None:  # the opposite leg swings with the arm
                leg = (self.leg_amp * g * np.sin(psi + phase))[:, None] * u
                lift = 0.04 * g * np.maximum(0, np.sin(psi + phase + 1.5 * math.pi))
            else:
                off, lift = stance_swing(psi + phase, self.swing_share, self.speed / self.stride_hz)
                leg, lift = (g * off)[:, None] * u, 0.04 * g * lift
            put(knee, xy - v * (0.1 * side) + 0.5 * leg, 0.28 * h + 0.5 * lift)
            put(foot, xy - v * (0.1 * side) + leg, 0.04 * h + lift)
        self._table_points(pts, t)
        return pts

    def _table_points(self, pts: np.ndarray, t: np.ndarray) -> None:
        if self.chair is None:
            pts[PAGE:] = self.world.device_position_m  # unused (zero gain)
            return
        chair, face = self.chair
        u, v = _unit(np.array(face)), _unit(np.array(face + math.pi / 2))
        pts[PAGE, :, :2] = chair + 0.45 * u - 0.12 * v
        pts[PAGE, :, 2] = 0.76
        pts[CUP, :, :2] = chair + 0.4 * u - 0.25 * v
        pts[CUP, :, 2] = 0.80

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
        pts[TORSO, :, :2], pts[TORSO, :, 2] = torso, 0.57 * h
        pts[HEAD, :, :2], pts[HEAD, :, 2] = torso + u * 0.03, 0.78 * h
        for s_, hand, elbow, knee, foot in ((1, HAND_L, ELBOW_L, KNEE_L, FOOT_L), (-1, HAND_R, ELBOW_R, KNEE_R,
                                                                                 FOOT_R)):
            pts[hand, :, :2], pts[hand, :, 2] = chair + 0.35 * u + 0.15 * s_ * v, 0.75
            pts[elbow, :, :2], pts[elbow, :, 2] = chair + 0.15 * u + 0.2 * s_ * v, 0.72
            pts[knee, :, :2], pts[knee, :, 2] = chair + 0.35 * u + 0.1 * s_ * v, 0.5
            pts[foot, :, :2], pts[foot, :, 2] = chair + 0.45 * u + 0.1 * s_ * v, 0.05
        self._table_points(pts, t)
        if self.actions is not None and n:
            rest = pts[[HAND_L, HAND_R]].copy()
            for t0, t1, (kind, pl) in self.actions.between(float(t[0]), float(t[-1]) + 1e-9):
                self._apply_action(pts, t, t0, kind, pl, u, v)
            pts[[ELBOW_L, ELBOW_R]] += 0.5 * (pts[[HAND_L, HAND_R]] - rest)   # the forearm follows the hand
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
            hand = HAND_R if pl["side"] > 0 else HAND_L
            pts[hand, m] += s[:, None] * d
        elif kind == "page":
            r = pl["r"]
            phi = math.pi * min_jerk(tt / pl["T"])
            spine = pts[PAGE, m].copy()
            spine[:, :2] += r * v  # the page edge rests at the spine + r to the right (v points left)
            edge = spine.copy()
            edge[:, :2] += -np.cos(phi)[:, None] * r * v
            edge[:, 2] += np.sin(phi) * r
            disp = edge - pts[PAGE, m]
            back = 1.0 - min_jerk((tt - pl["T"]) / 0.5)
            pts[PAGE, m] = edge
            pts[HAND_R, m] += disp * back[:, None]
        elif kind == "typing":
            taps, hands, depth = pl["taps"], pl["hand"], pl["depth"]
            sel = (taps > t[m][0] - 0.2) & (taps < t[m][-1] + 0.2)
            for tk, hk in zip(taps[sel], hands[sel]):
                x = (t[m] - tk) / 0.1
                bump = np.where(np.abs(x) < 0.5, np.cos(math.pi * x) ** 2, 0.0)
                pts[HANDS[hk], m, 2] -= depth * bump
        else:  # cup
            s = min_jerk(tt / pl["T"]) - min_jerk((tt - pl["T"] - pl["hold"]) / pl["T"])
            d = np.array([*(-pl["back"] * u), pl["up"]])
            pts[CUP, m] += s[:, None] * d
            pts[HAND_R, m] += s[:, None] * d

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
        vis = self.world.visibility(pos[TORSO])[None, :]
        g = np.repeat(vis, len(PERSON_POINTS), axis=0)
        if not self.has_table:
            g[PAGE:] = 0.0
        else:
            g[PAGE:] = 1.0  # table objects stay in the room
            if self.actions is not None and len(t):
                g[PAGE] = 0.0
                for t0, t1, (kind, pl) in self.actions.between(float(t[0]), float(t[-1]) + 1e-9):
                    if kind == "page":
                        g[PAGE] = np.maximum(g[PAGE], np.sin(math.pi * min_jerk((t - t0) / pl["T"])))
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
        near = vis & (dist <= MAJOR_RANGE_M)
        # a walk with short stops (< 1 s, e.g. at a waypoint or before sitting down) is one major interval
        major = merge_runs(runs(near & moving), int(round(1.0 / LABEL_STEP_S)), min_len=2)
        in_major = np.zeros(len(t), bool)
        for a, b in major:
            in_major[a:b] = True
        gap = int(round(0.3 / LABEL_STEP_S))
        for kind, spans in (("major", major),
                            ("far", merge_runs(runs(vis & (dist > MAJOR_RANGE_M)), gap, min_len=2)),
                            ("presence", runs(near & ~in_major))):
            for a, b in spans:
                out.append(LabelInterval(float(t[a]), float(min(t[b - 1] + LABEL_STEP_S, dur)), kind,
                                         distance_m=float(dist[a:b].min())))
        if self.actions is not None:
            for t0, t1, (kind, _pl) in self.actions.all_until(dur):
                if t1 > dur:
                    continue
                tt = np.linspace(t0, t1, 20)
                hand = self.positions(tt)[list(HANDS)]
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
              "yaw_deg": float, "ts_db": float, "flash_db": float}
    RADII = (0.3, 0.55, 0.8, 1.0)

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        self.start_s = float(self.p.get("start_s", -10.0))  # default: already running at t = 0
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
            flash = self.param("flash_db", lambda: round(float(rng.uniform(22, 30)), 1))
            self.flash_width = 0.04
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
            flash = self.param("flash_db", lambda: round(float(rng.uniform(20, 28)), 1))
            self.flash_width = 0.06
        self.flash_gain = 10 ** (flash / 20) - 1.0
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
        self._cache = None

    def _angle(self, t: np.ndarray) -> np.ndarray:
        cruise = (self.end_s - self.start_s - self.ramp) if math.isfinite(self.end_s) else 1e12
        d, _ = ramped_distance(t - self.start_s, self.ramp, max(cruise, 0.0), self.omega)
        return self.phase0 + d

    def _blades(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cos, sin) of the blade angles in the rotor plane, each (B, T); cached for the last time grid."""
        if self._cache is not None and self._cache[0] is t:
            return self._cache[1]
        ang = self._angle(np.asarray(t, float))
        blades = ang[None, :] + 2 * math.pi * np.arange(self.n_blades)[:, None] / self.n_blades
        cs = (np.cos(blades), np.sin(blades))
        self._cache = (t, cs)
        return cs

    def _frame(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotor-plane unit vectors e1 (T, 3) or (1, 3), e2 (1, 3): radial = cos(phi) e1 + sin(phi) e2."""
        if self.ceiling:
            return np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])
        yaw = self.yaw0 + self.osc * np.sin(2 * math.pi * t / self.period + self.osc_phase)
        return np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1), np.array([[0.0, 0.0, 1.0]])

    def positions(self, t: np.ndarray) -> np.ndarray:
        cos_b, sin_b = self._blades(t)                                  # (B, T)
        e1, e2 = self._frame(t)
        pts = np.empty((self.n_blades, len(self.RADII), len(t), 3))
        for k in range(3):
            comp = cos_b * e1[:, k] + sin_b * e2[:, k]                 # (B, T) radial unit vector component
            pts[..., k] = self.hub[k] + comp[:, None, :] * (self.radius * np.array(self.RADII))[None, :, None]
        return pts.reshape(-1, len(t), 3)

    def geometry(self, t, origin, offsets, with_dots, images=None):
        """Analytic ranges of the blade points (no (P, T, 3) arrays): with h = hub - origin and the radial unit
        vector rho = cos(phi) e1 + sin(phi) e2, |h + r rho|^2 = |h|^2 + 2 r h.rho + r^2 and d.o = h.o + r rho.o."""
        cos_b, sin_b = self._blades(t)                                  # (B, T)
        e1, e2 = self._frame(t)                                         # (T or 1, 3), (1, 3)
        h = self.hub - origin
        radii = self.radius * np.array(self.RADII)[None, :, None]       # (1, R, 1)
        h_rho = cos_b * (e1 @ h) + sin_b * (e2 @ h)                     # (B, T)
        r1 = np.sqrt(h @ h + 2 * radii * h_rho[:, None, :] + radii ** 2).reshape(-1, len(t))
        gain = self.gains(t, None) * (10 ** (self.ts_db / 20))[:, None]
        dots = None
        if with_dots:
            rho_o = cos_b[None] * (e1 @ offsets.T).T[:, None, :] + sin_b[None] * (e2 @ offsets.T).T[:, None, :]
            dots = ((offsets @ h)[:, None, None, None] + radii[None] * rho_o[:, :, None, :]).reshape(
                len(offsets), -1, len(t))                              # (M, B*R, T)
        return r1, gain, dots, None

    def gains(self, t: np.ndarray, pos: np.ndarray | None) -> np.ndarray:
        cos_b, sin_b = self._blades(t)
        e1, e2 = self._frame(t)
        c = cos_b * (e1 @ self.los) + sin_b * (e2 @ self.los)          # radial . line of sight, (B, T)
        flash = 1.0 + self.flash_gain * np.exp(-(c * c) / (2 * self.flash_width ** 2))
        return np.repeat(flash, len(self.RADII), axis=0)


# ------------------------------------------------------------------------------------------------------ point

class Point(Mover):
    """One point reflector moving through 3-D ``waypoints_m`` at ``speed_m_s`` (raised-cosine ramps of ``ramp_s``,
    ``pauses_s`` at the waypoints), target strength ``ts_db``. For tests, calibration targets, custom objects."""

    type_name = "point"
    PARAMS = {"waypoints_m": list, "speed_m_s": float, "ts_db": float, "ramp_s": float, "pauses_s": list,
              "label": str}

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        wp = self.p.get("waypoints_m")
        if not wp or any(not isinstance(q, list) or len(q) != 3 for q in wp):
            raise SceneError("point.waypoints_m: give a list of [x, y, z] room positions (m)")
        self.wp = np.array(wp, float)
        speed = self.param("speed_m_s", lambda: 1.0)
        self.plan = LegPlan(self.wp[:, :2], speed, self.p.get("pauses_s") or [], self.start_s,
                            ramp_s=self.param("ramp_s", lambda: 0.5))
        seg = np.linalg.norm(np.diff(self.wp[:, :2], axis=0), axis=1)
        self.cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.ts_db = np.array([float(self.param("ts_db", lambda: -20.0))])
        self.kind = self.p.get("label")

    def positions(self, t):
        xy, _, dist, _ = self.plan.eval(np.asarray(t, float))
        z = np.interp(dist, self.cum, self.wp[:, 2]) if len(self.wp) > 1 else np.full(len(xy), self.wp[0, 2])
        return np.concatenate([xy, z[:, None]], axis=1)[None]

    def labels(self):
        return [] if self.kind is None else super().labels()


# ------------------------------------------------------------------------------------------------------ pet

class Pet(Mover):
    """A dog or cat wandering with pauses: body, head, four legs trotting (diagonal pairs), a tail."""

    type_name = "pet"
    bounce_points = (0,)
    PARAMS = {"animal": str, "speed_m_s": float, "waypoints_m": list, "pauses_s": list, "stride_hz": float}
    BODY = {"dog": (0.40, -24.0, 0.25), "cat": (0.22, -31.0, 0.15)}  # body height, body TS, half length

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        animal = self.param("animal", lambda: "dog" if rng.random() < 0.6 else "cat")
        if animal not in self.BODY:
            raise SceneError(f"pet.animal: must be dog or cat, got {animal!r}")
        self.h, ts, self.half = self.BODY[animal]
        self.h *= rng.uniform(0.8, 1.2)
        self.speed = self.param("speed_m_s", lambda: round(float(rng.uniform(0.3, 1.5)), 2))
        self.stride_hz = self.param("stride_hz", lambda: round(float(rng.uniform(1.5, 3.0)), 2))
        if self.p.get("waypoints_m"):
            wp = np.array(self.p["waypoints_m"], float)
            pauses = list(self.p.get("pauses_s") or [])
        else:
            n = 3 + int(max(10.0, min(duration_s, 600.0)) / 4)
            wp = np.array([world.clamp_inside(rng.uniform([0, 0], world.size_m[:2]), 0.3) for _ in range(n)])
            pauses = [0.0] + rng.uniform(0.5, 6.0, n - 1).tolist()
        self.plan = LegPlan(wp, self.speed, pauses, self.start_s, ramp_s=0.4)
        self.leg_amp = 0.9 * self.speed / (2 * math.pi * self.stride_hz)
        self.ts_db = np.array([ts, ts - 8, ts - 10, ts - 10, ts - 10, ts - 10, ts - 14])
        self.tail = rng.uniform(1.0, 3.0), rng.uniform(0.02, 0.06)
        self.breath = rng.uniform(0.5, 1.5)

    def positions(self, t):
        t = np.asarray(t, float)
        xy, speed, dist, heading = self.plan.eval(t)
        u = _unit(heading)
        v = np.stack([-u[:, 1], u[:, 0]], axis=1)
        g = speed / max(self.speed, 1e-6)
        psi = 2 * math.pi * self.stride_hz * dist / max(self.speed, 1e-6)
        pts = np.empty((7, len(t), 3))
        br = 0.002 * np.sin(2 * math.pi * self.breath * t)
        pts[0, :, :2], pts[0, :, 2] = xy + v * br[:, None], self.h + 0.01 * g * np.cos(2 * psi)
        pts[1, :, :2], pts[1, :, 2] = xy + u * (self.half + 0.1), self.h + 0.1
        for i, (fwd, side, ph) in enumerate(((1, 1, 0.0), (1, -1, math.pi), (-1, 1, math.pi), (-1, -1, 0.0))):
            swing = self.leg_amp * g * np.sin(psi + ph)
            pts[2 + i, :, :2] = xy + u * (fwd * self.half * 0.8 + swing)[:, None] + v * (0.06 * side)
            pts[2 + i, :, 2] = 0.3 * self.h
        wag = self.tail[1] * np.sin(2 * math.pi * self.tail[0] * t)
        pts[6, :, :2] = xy - u * (self.half + 0.1) + v * wag[:, None]
        pts[6, :, 2] = self.h
        return pts

    def labels(self):
        if not math.isfinite(self.duration_s):
            return []
        t = np.arange(0.0, self.duration_s + 1e-9, LABEL_STEP_S)
        xy, speed, _, _ = self.plan.eval(t)
        pos = np.concatenate([xy, np.full((len(t), 1), self.h)], axis=1)
        dist = self.world.distance_to_device(pos)
        out = []
        for a, b in merge_runs(runs((speed > 0.1) & (self.world.visibility(pos) > 0.5)),
                               int(1.0 / LABEL_STEP_S), 2):
            out.append(LabelInterval(float(t[a]), float(min(t[b - 1] + LABEL_STEP_S, self.duration_s)), "pet",
                                     distance_m=float(dist[a:b].min())))
        return out


# ------------------------------------------------------------------------------------------------------ draft

class Curtain(Mover):
    """Curtain near a wall (points in a vertical plane) swaying in a draft: each point is displaced along the
    wall normal by a sum of slow random sinusoids (0.15-1.2 Hz), scaled by a slow gust envelope; the point
    velocities are ``speed_m_s`` RMS (0.02-0.3 m/s)."""

    type_name = "curtain"
    kind = "curtain"
    PARAMS = {"speed_m_s": float, "position_m": list, "width_m": float, "ts_db": float, "n_points": int}
    N_SINES = 3
    #: per-point TS: together the points give a partial specular reflection of a soft 1-3 m wide curtain
    TS_RANGE_DB = (-28.0, -20.0)
    N_POINTS = 24

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        self.start_s = float(self.p.get("start_s", -10.0))
        n = self.param("n_points", lambda: self.N_POINTS)
        v_rms = self.param("speed_m_s", lambda: round(float(rng.uniform(0.02, 0.3)), 3))
        ts = self.param("ts_db", lambda: round(float(rng.uniform(*self.TS_RANGE_DB)), 1))
        self.ts_db = np.full(n, float(ts))
        self._layout(rng, n)
        f = rng.uniform(0.15, 1.2, (n, self.N_SINES))
        # velocity amplitude of each sine so that the summed velocity has the requested RMS
        vel = v_rms * np.sqrt(2.0 / self.N_SINES) * rng.uniform(0.6, 1.4, (n, self.N_SINES))
        self.amp = vel / (2 * math.pi * f)
        self.freq = f
        self.phase = rng.uniform(0, 2 * math.pi, (n, self.N_SINES))
        self.gust = rng.uniform(0.02, 0.08), rng.uniform(0, 2 * math.pi)

    def _layout(self, rng, n):
        w = self.world
        wall = int(rng.integers(0, 4))
        axis, high = divmod(wall, 2)
        other = 1 - axis
        width = self.param("width_m", lambda: round(float(rng.uniform(1.0, 3.0)), 2))
        c = np.zeros(2)
        c[axis] = w.size_m[axis] - 0.12 if high else 0.12
        c[other] = rng.uniform(min(width / 2, w.size_m[other] / 2), max(w.size_m[other] - width / 2,
                                                                        w.size_m[other] / 2))
        centre = np.asarray(self.param("position_m", lambda: [round(float(x), 3) for x in c]), float)[:2]
        tangent = np.zeros(2)
        tangent[other] = 1.0
        normal_in = np.zeros(2)
        normal_in[axis] = -1.0 if high else 1.0
        cols = max(1, n // 4)
        s = (np.arange(n) % cols) / max(cols - 1, 1) - 0.5
        z = 0.4 + 1.9 * (np.arange(n) // cols) / max((n - 1) // cols, 1)
        self.rest = np.zeros((n, 3))
        self.rest[:, :2] = centre + width * s[:, None] * tangent
        self.rest[:, 2] = np.minimum(z, w.size_m[2] - 0.1)
        self.direction = np.array([*normal_in, 0.0])

    def _envelope(self, t):
        f, ph = self.gust
        g = 0.35 + 0.65 * (0.5 + 0.5 * np.sin(2 * math.pi * f * t + ph)) ** 2
        end = self.end_s if math.isfinite(self.end_s) else 1e12
        return g * smooth_window(t, self.start_s, end, 3.0)

    def positions(self, t):
        t = np.asarray(t, float)
        disp = sum_sines(t, self.amp, self.freq, self.phase) * self._envelope(t)[None, :]   # (P, T)
        return self.rest[:, None, :] + disp[..., None] * self.direction

    def gains(self, t, pos):
        return np.ones(pos.shape[:2])


class Plant(Curtain):
    """A potted plant or a hanging lamp in a draft: points in a 0.3 m ball moving in 3-D (0.02-0.15 m/s)."""

    type_name = "plant"
    TS_RANGE_DB = (-32.0, -24.0)
    N_POINTS = 12

    def _layout(self, rng, n):
        w = self.world
        d = float(rng.uniform(0.8, 4.0))
        c = np.asarray(self.param("position_m", lambda: [round(float(x), 3) for x in (
            *w.point_at_distance(rng, d, 0.4), rng.uniform(0.5, 1.5))]), float)
        self.rest = c + rng.normal(0, 0.15, (n, 3))
        d = rng.normal(0, 1, (n, 3))
        self.direction = d / np.linalg.norm(d, axis=1, keepdims=True)

    def positions(self, t):
        t = np.asarray(t, float)
        disp = sum_sines(t, self.amp, self.freq, self.phase) * self._envelope(t)[None, :]
        return self.rest[:, None, :] + disp[..., None] * self.direction[:, None, :]


# ------------------------------------------------------------------------------------------------------ vacuum

class Vacuum(Mover):
    """Robot vacuum: a low hard body driving straight lines at ~0.3 m/s with turns, plus a spinning side brush."""

    type_name = "vacuum"
    kind = "vacuum"
    bounce_points = (0,)
    PARAMS = {"speed_m_s": float, "waypoints_m": list}

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        self.speed = self.param("speed_m_s", lambda: round(float(rng.uniform(0.25, 0.35)), 3))
        if self.p.get("waypoints_m"):
            wp = np.array(self.p["waypoints_m"], float)
        else:
            horizon = min(duration_s, 3600.0) if math.isfinite(duration_s) else 3600.0
            n = 2 + int(horizon * self.speed / 1.0)
            wp = np.array([world.clamp_inside(rng.uniform([0, 0], world.size_m[:2]), 0.25) for _ in range(n)])
        pauses = [0.0] + rng.uniform(0.5, 2.0, len(wp) - 1).tolist()
        self.plan = LegPlan(wp, self.speed, pauses, self.start_s, ramp_s=0.5)
        self.brush_hz = rng.uniform(2.0, 4.0)
        self.ts_db = np.array([rng.uniform(-22, -17), -38.0, -38.0])

    def positions(self, t):
        t = np.minimum(np.asarray(t, float), self.end_s)
        xy, speed, dist, heading = self.plan.eval(t)
        u = _unit(heading)
        v = np.stack([-u[:, 1], u[:, 0]], axis=1)
        pts = np.empty((3, len(t), 3))
        pts[0, :, :2], pts[0, :, 2] = xy, 0.05
        ang = 2 * math.pi * self.brush_hz * t
        for i, off in ((1, 0.0), (2, math.pi)):
            br = xy + 0.12 * u + 0.12 * v + 0.06 * np.stack([np.cos(ang + off), np.sin(ang + off)], axis=1)
            pts[i, :, :2], pts[i, :, 2] = br, 0.01
        return pts

    def active_interval(self):
        end = self.end_s if math.isfinite(self.end_s) else self.plan.end_s
        return self.start_s, min(end, self.duration_s)


# ------------------------------------------------------------------------------------------------------ door

class Door(Mover):
    """A door on a wall swinging open (60-100 deg, minimum-jerk over 1-2.5 s) and shut again."""

    type_name = "door"
    kind = "door"
    PARAMS = {"n_swings": int, "times_s": list, "open_deg": float, "width_m": float}

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        self.width = self.param("width_m", lambda: round(float(rng.uniform(0.75, 0.9)), 3))
        self.open = math.radians(self.param("open_deg", lambda: round(float(rng.uniform(60, 100)), 1)))
        horizon = duration_s if math.isfinite(duration_s) else 60.0
        n = self.param("n_swings", lambda: int(rng.integers(1, 4)))
        times = self.param("times_s", lambda: np.round(np.sort(rng.uniform(0.5, max(1.0, horizon - 3.0), n)),
                                                       2).tolist())
        self.moves = []  # (t0, T, from_angle, to_angle)
        angle = 0.0
        for t0 in times:
            target = self.open if angle == 0.0 else 0.0
            self.moves.append((float(t0), float(rng.uniform(1.0, 2.5)), angle, target))
            angle = target
        n_out = world.door_normal
        self.tangent = np.array([-n_out[1], n_out[0]])
        self.normal_in = -n_out
        self.hinge = world.door_m - self.tangent * self.width / 2
        frac = np.array([0.3, 0.6, 0.9, 0.3, 0.6, 0.9])
        self.frac, self.z = frac, np.array([1.0, 1.0, 1.0, 1.8, 1.8, 1.8])
        self.ts_db = np.full(6, float(rng.uniform(-26, -20)))

    def angle(self, t):
        a = np.zeros(len(t))
        for t0, dur, a0, a1 in self.moves:
            m = t >= t0
            a[m] = a0 + (a1 - a0) * min_jerk((t[m] - t0) / dur)
        return a

    def positions(self, t):
        t = np.asarray(t, float)
        ang = self.angle(t)
        d = np.cos(ang)[:, None] * self.tangent + np.sin(ang)[:, None] * self.normal_in    # (T, 2)
        pts = np.empty((6, len(t), 3))
        pts[:, :, :2] = self.hinge + self.width * self.frac[:, None, None] * d[None]
        pts[:, :, 2] = self.z[:, None]
        return pts

    def gains(self, t, pos):
        return np.ones(pos.shape[:2])

    def labels(self):
        return [LabelInterval(t0, min(t0 + dur, self.duration_s), "door") for t0, dur, _, _ in self.moves
                if t0 < self.duration_s]


# ------------------------------------------------------------------------------------------------------ non-point

class Hvac(Mover):
    """HVAC airflow: slow random phase wander on the strongest static paths (handled by the renderer).

    ``strength_rad``: RMS phase wander of a 5 m path (0.02-0.3 rad; grows with sqrt(path length)); ``n_paths``.
    """

    type_name = "hvac"
    kind = "hvac"
    PARAMS = {"strength_rad": float, "n_paths": int}
    N_SINES = 4

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        self.start_s = float(self.p.get("start_s", -10.0))
        self.strength = self.param("strength_rad", lambda: round(float(rng.uniform(0.02, 0.3)), 3))
        self.n_paths = self.param("n_paths", lambda: 24)
        k = self.N_SINES
        self.freq = rng.uniform(0.05, 3.0, (self.n_paths, k))
        self.phase = rng.uniform(0, 2 * math.pi, (self.n_paths, k))
        self.amp = np.full((self.n_paths, k), math.sqrt(2.0 / k))

    def phases(self, t: np.ndarray, length_m: np.ndarray) -> np.ndarray:
        """Phase wander (rad) of the chosen paths (P,) with lengths ``length_m`` at times t: (P, T)."""
        p = len(length_m)
        end = self.end_s if math.isfinite(self.end_s) else 1e12
        gate = smooth_window(t, self.start_s, end, 5.0)
        scale = self.strength * np.sqrt(length_m / 5.0)
        return scale[:, None] * sum_sines(t, self.amp[:p], self.freq[:p], self.phase[:p]) * gate[None, :]


class Keys(Mover):
    """Keys jingling: bursts of clicks, each a few damped sinusoids from 2 kHz to Nyquist (they reach the
    ultrasound band), added at the mics with per-mic delay, 1/r spreading and ISO absorption per partial."""

    type_name = "keys"
    kind = "keys"
    PARAMS = {"n_events": int, "times_s": list, "level_dbfs": float, "position_m": list}

    def __init__(self, params, world, rng, duration_s):
        super().__init__(params, world, rng, duration_s)
        horizon = duration_s if math.isfinite(duration_s) else 60.0
        n = self.param("n_events", lambda: int(rng.integers(1, 4)))
        times = self.param("times_s", lambda: np.round(np.sort(rng.uniform(0.3, max(0.5, horizon - 1.5), n)),
                                                       2).tolist())
        level = self.param("level_dbfs", lambda: round(float(rng.uniform(-45, -25)), 1))
        d = float(rng.uniform(0.5, 4.0))
        pos = self.param("position_m", lambda: [*np.round(world.point_at_distance(rng, d, 0.3), 3).tolist(),
                                               round(float(rng.uniform(0.7, 1.3)), 3)])
        fs = world.sample_rate
        mics = world.mic_positions_room
        r = np.linalg.norm(np.asarray(pos, float) - mics, axis=1)                  # (M,)
        self.delay_s = r / world.c_m_s + world.latency_s
        self.events = []
        clicks = []
        for t0 in times:
            dur = float(rng.uniform(0.3, 1.5))
            self.events.append((float(t0), dur))
            nc = int(dur * rng.uniform(15, 50))
            for tc in np.sort(t0 + rng.uniform(0, dur, nc)):
                nm = 4
                f = rng.uniform(2000, 0.48 * fs, nm)
                tau = rng.uniform(0.3e-3, 2.5e-3, nm) * (8000 / f) ** 0.3
                a = 10 ** (level / 20) * rng.uniform(0.3, 1.0, nm) * (4000 / f) ** 0.25
                clicks.append((float(tc), f, tau, a, rng.uniform(0, 2 * math.pi, nm)))
        self.clicks = clicks
        self._times = np.array([c[0] for c in clicks])
        from uspd import physics
        self.mic_att = {}
        self.r = r
        self._alpha = lambda f: physics.air_absorption_db_per_m(f, world.temperature_c, world.humidity_pct)

    def add_to(self, block: np.ndarray, n0: int, fs: int, gains: np.ndarray) -> None:
        """Add the clicks falling into ``block`` (M, B) that starts at sample ``n0``. gains: (M,) mic gains."""
        if not len(self._times):
            return
        n_blk = block.shape[1]
        t_lo, t_hi = n0 / fs - 0.03, (n0 + n_blk) / fs
        i0, i1 = np.searchsorted(self._times, [t_lo - 0.05, t_hi])
        for tc, f, tau, a, ph in self.clicks[i0:i1]:
            length = int(8 * tau.max() * fs) + 2
            for m in range(block.shape[0]):
                start = tc + self.delay_s[m]
                s0 = max(int(math.ceil(start * fs)), n0)
                s1 = min(int(start * fs) + length, n0 + n_blk)
                if s1 <= s0:
                    continue
                tt = np.arange(s0, s1) / fs - start
                att = a * 10 ** (-self._alpha(f) * self.r[m] / 20) / self.r[m] * gains[m]
                wave = np.sum(att[:, None] * np.exp(-tt[None, :] / tau[:, None])
                              * np.sin(2 * math.pi * f[:, None] * tt[None, :] + ph[:, None]), axis=0)
                block[m, s0 - n0:s1 - n0] += wave * (1 - np.exp(-tt / 5e-5))

    def labels(self):
        return [LabelInterval(t0, min(t0 + d, self.duration_s), "keys") for t0, d in self.events
                if t0 < self.duration_s]


# ------------------------------------------------------------------------------------------------------ registry

MOVER_TYPES: dict[str, type[Mover]] = {"person": Person, "fan": Fan, "point": Point, "pet": Pet, "curtain": Curtain, "plant": Plant,
                                       "vacuum": Vacuum, "door": Door, "hvac": Hvac, "keys": Keys}
#: Movers that are not point reflectors (the renderer handles them itself).
NON_POINT_TYPES = ("hvac", "keys")


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
