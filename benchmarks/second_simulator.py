"""Score the detectors on recordings from a second simulator, written apart from ``uspd.simulate``.

uspd is judged on recordings it never sees, made by other simulators and by real devices. Everything it was trained
and tuned on comes from one renderer, so a detector could fit that renderer's quirks (its gait model, its noise, its
confusers, its device spread) and fail elsewhere. This script renders a labelled set with a different renderer and
scores classic, nn and hybrid on it in one table (``uspd evaluate``'s own code and output), next to each other.

What differs from ``uspd.simulate`` (on purpose; the shared physics is the standard one: Doppler from the path
length, 1/(r1 r2) spreading, ISO 9613-1 air absorption from :mod:`uspd.physics`):

- rendering: each path's complex baseband ``a(t) exp(-j 2 pi f0 L(t) / c)`` at 4-24 kHz, upsampled (polyphase) and
  mixed to the carrier (optionally with a capture-clock offset the sidecar does not know about);
- device: 2-8 mics on a 2.5-5 cm ring, a directional loudspeaker ((1 + cos theta) / 2) ** p, p 0.5-2, direct-path
  coupling +-10 dB around free field, white self-noise at -90 to -74 dBFS, 16 bits;
- room: 3-7 x 3-6 m, walls reflecting U(``--reflection``) of the amplitude; the static field is the direct path,
  first-order wall images and 12 furniture points (no higher orders); moving targets are lit by the loudspeaker and
  by its six wall images (speaker -> wall -> target -> mic; ``--no-bounces``: by the loudspeaker only);
- a walker: 10 points (torso, head, hands, knees, feet) whose feet are planted during stance and swing forward on a
  raised cosine (peak ~3.9x walking speed), cadence from speed (stride 0.55 + 0.3 v Hz); enters through the door,
  then stops or leaves; torso target strength -21 to -15 dB;
- confusers: a ceiling fan (3-5 blades, 0.8-3 rev/s), an oscillating desk fan (15-25 rev/s), a curtain (20 points
  swaying 0.02-0.15 m/s RMS in gusts), HVAC (slow path-length wander of every static echo, 0.3-3 mm RMS), a
  trotting dog or cat with its own stride (1.2 + 1.0 v Hz), pauses and paws planted in stance.

    python benchmarks/second_simulator.py --out /tmp/second [--seed 1] [--walks 48] [--negatives 36]
        [--negative-s 150] [--workers 2] [--reflection 0.5,0.9] [--coupling-db 10] [--beam-p 0.5,2]
        [--no-bounces] [--clock-ppm 0 [--carrier-known]] [--config C.toml] [--json OUT.json] [--also DIR ...]

Rendering is seeded and resumable (finished clips are kept). The printed table is ``uspd evaluate DIR --detector
all --recall-levels 0.8,0.9``; after it, each detector's major recall of the walkers per bin of the device and scene
factors (direct coupling, mics, sample rate, beam, self-noise, the room's level over the noise, distance, confusers
running during the movement), to show which of them a detector loses walkers to; ``--also DIR`` (a set of ``uspd
dataset eval``) prints the same breakdown for our own simulator's walk-ins, scored with the same config, to show
whether a factor's range is one we train on. Labels: ``major`` while a walker moves within 5 m (``far`` beyond),
``presence`` while one stands still, ``pet`` while a pet moves, one interval per confuser over the clip.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CONTROL_HZ = 200.0  # trajectories and path lengths are computed at this rate, then interpolated
LABEL_STEP_S = 0.05
MAJOR_RANGE_M = 5.0


# --------------------------------------------------------------------------------------------- motion along a path
def path_motion(waypoints_m: np.ndarray, speed_m_s: float, pauses_s: list[float], start_s: float, ramp_s: float,
                t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk the polyline ``waypoints_m`` (K, 2) from ``start_s``, stopping ``pauses_s[k]`` at waypoint k+1, with
    trapezoid speed ramps of ``ramp_s``. Returns xy (T, 2), speed (T,) m/s, heading (T, 2) unit, travelled (T,) m;
    before ``start_s`` the mover stands at the first waypoint, after the last it stands at the last."""
    knots_t, knots_s = [start_s], [0.0]
    seg_len = np.linalg.norm(np.diff(waypoints_m, axis=0), axis=1)
    total = 0.0
    for k, length in enumerate(seg_len):
        ramp = min(ramp_s, length / speed_m_s)
        dur = length / speed_m_s + ramp
        tau = np.linspace(0.0, dur, max(3, int(dur * 50)))
        s = np.where(tau < ramp, speed_m_s * tau ** 2 / (2 * ramp + 1e-12),
                     np.where(tau < dur - ramp, speed_m_s * (tau - ramp / 2),
                              length - speed_m_s * (dur - tau) ** 2 / (2 * ramp + 1e-12)))
        knots_t += list(knots_t[-1] + tau[1:])
        knots_s += list(total + s[1:])
        total += length
        pause = pauses_s[k] if k < len(pauses_s) else 0.0
        knots_t.append(knots_t[-1] + max(pause, 1e-3))
        knots_s.append(total)
    s_t = np.interp(t_s, knots_t, knots_s)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    seg = np.clip(np.searchsorted(cum, s_t, side="right") - 1, 0, len(seg_len) - 1)
    direction = np.diff(waypoints_m, axis=0) / np.maximum(seg_len, 1e-9)[:, None]
    xy = waypoints_m[seg] + direction[seg] * (s_t - cum[seg])[:, None]
    speed = np.gradient(s_t, t_s)
    return xy, speed, direction[seg], s_t


def swing(u: np.ndarray, stance: float) -> np.ndarray:
    """Foot advance within one stride (0..1) at stride phase ``u`` (0..1): planted for ``stance``, then a raised
    cosine."""
    w = np.clip((u - stance) / (1.0 - stance), 0.0, 1.0)
    return (1.0 - np.cos(math.pi * w)) / 2.0


# ---------------------------------------------------------------------------------------------------- movers
class Strider:
    """A mover that walks ``waypoints`` at ``speed`` with ``pauses`` from ``start_s`` (speed ramps of ``ramp_s``) and
    whose limbs follow the distance travelled in strides of ``stride_len``."""

    ramp_s = 0.5

    def motion(self, t):
        return path_motion(self.waypoints, self.speed, self.pauses, self.start_s, self.ramp_s, t)

    def gait(self, t):
        """xy (T, 2), heading and its left normal (T, 2), stride phase (T,) in strides, speed share g (T,) 0..1,
        travelled distance (T,) m."""
        xy, speed, head, s = self.motion(t)
        side = np.stack([-head[:, 1], head[:, 0]], axis=1)
        return xy, head, side, s / self.stride_len, np.clip(speed / self.speed, 0.0, 1.0), s


class Walker(Strider):
    """A person entering through the door: walks to a spot 0.5-3.5 m from the device, then stands (breathing) or
    walks out again. ``points(t)`` -> (P, T, 3) m; ``ts_db`` (P,)."""

    def __init__(self, rng, room, start_s: float, duration_s: float):
        self.room = room
        door, dev = room["door_m"], room["device_m"][:2]
        target = room.inside(rng, 0.4, near=dev, rmin=0.5, rmax=3.5)
        wps = [door, room.inside(rng, 0.4), target] if rng.random() < 0.3 else [door, target]
        self.leaves = rng.random() < 0.5
        if self.leaves:
            wps += [room.inside(rng, 0.4), door]
        self.speed = float(rng.uniform(0.7, 1.6))
        self.stride_len = self.speed / (0.55 + 0.3 * self.speed)
        self.waypoints = np.array(wps, float)
        self.path_m = float(np.sum(np.linalg.norm(np.diff(self.waypoints, axis=0), axis=1)))
        self.pauses = [float(rng.uniform(0.0, 1.5)) for _ in wps]
        self.start_s = start_s
        self.height = float(rng.uniform(1.55, 1.95))
        self.arm_m = float(rng.uniform(0.15, 0.28))
        self.breath_m, self.breath_hz = float(rng.uniform(0.002, 0.006)), float(rng.uniform(0.2, 0.33))
        self.ts_db = np.concatenate([[rng.uniform(-21, -15), rng.uniform(-30, -25)], rng.uniform(-33, -28, 2),
                                     rng.uniform(-31, -26, 2), rng.uniform(-33, -28, 2), rng.uniform(-36, -30, 2)])

    ramp_s = 0.6

    def points(self, t):
        xy, head, side, phase, g, s = self.gait(t)
        h = self.height
        breath = self.breath_m * np.sin(2 * math.pi * self.breath_hz * t) * (1.0 - g)
        pts = []
        bob = 0.02 * g * np.cos(4 * math.pi * phase)
        torso = xy + head * breath[:, None] + side * (0.02 * g * np.sin(2 * math.pi * phase))[:, None]
        pts.append(np.column_stack([torso, 0.66 * h + bob]))
        pts.append(np.column_stack([xy, 0.94 * h + bob]))
        for k, sgn in enumerate((1.0, -1.0)):  # hands swing against the leg on their side
            fwd = self.arm_m * g * np.sin(2 * math.pi * phase + math.pi * k)
            pts.append(np.column_stack([xy + head * fwd[:, None] + side * (0.22 * sgn), np.full_like(t, 0.45 * h)]))
        feet = []
        for k, sgn in enumerate((1.0, -1.0)):
            p = phase + 0.5 * k
            u = p - np.floor(p)
            rel = self.stride_len * (swing(u, 0.6) - u + 0.3)  # foot minus body, along the heading
            lift = 0.08 * np.sin(math.pi * np.clip((u - 0.6) / 0.4, 0, 1)) * g
            feet.append((xy + head * rel[:, None] + side * (0.1 * sgn), 0.05 + lift, rel))
        for foot_xy, _, rel in feet:  # knees: above the midpoint of hip and foot
            pts.append(np.column_stack([xy + (foot_xy - xy) * 0.5, np.full_like(t, 0.28 * h)]))
        for foot_xy, z, _ in feet:
            pts.append(np.column_stack([foot_xy, z]))
        for foot_xy, _, rel in feet:  # shins (a second point per leg)
            pts.append(np.column_stack([xy + (foot_xy - xy) * 0.8, np.full_like(t, 0.14 * h)]))
        gone = (s >= self.path_m - 0.05) & (t > self.start_s + 1.0) & self.leaves  # out through the door
        return np.stack(pts), (t >= self.start_s) & ~gone

    def labels(self, duration_s: float) -> list[dict]:
        t = np.arange(0.0, duration_s, LABEL_STEP_S)
        xy, speed, _, s = self.motion(t)
        _, present = self.points(t)
        dist = np.linalg.norm(np.column_stack([xy, np.full(len(t), 1.1)]) - self.room["device_m"], axis=1)
        moving = (speed > 0.1) & present
        out = []
        for kind, sel in (("major", moving & (dist <= MAJOR_RANGE_M)), ("far", moving & (dist > MAJOR_RANGE_M)),
                          ("presence", ~moving & present & (t > self.start_s))):
            for a, b in runs(sel):
                if (b - a) * LABEL_STEP_S >= 0.3:
                    out.append({"start_s": round(a * LABEL_STEP_S, 3), "end_s": round(b * LABEL_STEP_S, 3),
                                "kind": kind, "distance_m": round(float(dist[a:b].min()), 3)})
        return out


class Pet(Strider):
    """A dog or cat trotting between random spots with pauses: chest, hip, head, four paws (diagonal pairs planted
    half the stride), tail."""

    def __init__(self, rng, room, duration_s: float):
        self.room = room
        self.dog = rng.random() < 0.6
        self.h = float(rng.uniform(0.3, 0.55) if self.dog else rng.uniform(0.2, 0.28))
        self.half = float(rng.uniform(0.25, 0.45) if self.dog else rng.uniform(0.17, 0.23))
        body = rng.uniform(-26, -20) if self.dog else rng.uniform(-34, -28)
        self.ts_db = np.array([body, body - 3, body - 8] + [body - 11] * 4 + [body - 14])
        self.speed = float(rng.uniform(0.4, 1.8))
        self.stride_len = self.speed / (1.2 + 1.0 * self.speed)
        n = 3 + int(duration_s / 5)
        self.waypoints = np.array([room.inside(rng, 0.3) for _ in range(n)])
        self.pauses = rng.uniform(0.5, 6.0, n).tolist()
        self.start_s = float(rng.uniform(0.0, 5.0))

    ramp_s = 0.3

    def points(self, t):
        xy, head, side, phase, g, _ = self.gait(t)
        bob = 0.015 * g * np.cos(4 * math.pi * phase)
        pts = [np.column_stack([xy + head * self.half * 0.6, self.h + bob]),
               np.column_stack([xy - head * self.half * 0.6, self.h + bob]),
               np.column_stack([xy + head * (self.half + 0.12), self.h + 0.1 + bob])]
        for fwd, sgn, off in ((1, 1, 0.0), (1, -1, 0.5), (-1, 1, 0.5), (-1, -1, 0.0)):
            p = phase + off
            u = p - np.floor(p)
            rel = self.stride_len * (swing(u, 0.5) - u + 0.25) + fwd * self.half * 0.8
            pts.append(np.column_stack([xy + head * rel[:, None] + side * (0.07 * sgn),
                                        0.03 + 0.05 * np.sin(math.pi * np.clip((u - 0.5) / 0.5, 0, 1)) * g]))
        wag = 0.04 * np.sin(2 * math.pi * 2.0 * t)
        pts.append(np.column_stack([xy - head * (self.half + 0.1) + side * wag[:, None], np.full_like(t, self.h)]))
        return np.stack(pts), np.ones(len(t), bool)

    def labels(self, duration_s: float) -> list[dict]:
        t = np.arange(0.0, duration_s, LABEL_STEP_S)
        xy, speed, _, _ = self.motion(t)
        dist = np.linalg.norm(np.column_stack([xy, np.full(len(t), self.h)]) - self.room["device_m"], axis=1)
        return [{"start_s": round(a * LABEL_STEP_S, 3), "end_s": round(b * LABEL_STEP_S, 3), "kind": "pet",
                 "distance_m": round(float(dist[a:b].min()), 3)} for a, b in runs(speed > 0.1)]


class CeilingFan:
    def __init__(self, rng, room, duration_s: float):
        self.c = np.array([*room.inside(rng, 1.0), room["size_m"][2] - rng.uniform(0.25, 0.45)])
        self.nb, self.r = int(rng.integers(3, 6)), float(rng.uniform(0.45, 0.65))
        self.rps, self.phase = float(rng.uniform(0.8, 3.0)), float(rng.uniform(0, 2 * math.pi))
        self.ts_db = np.tile(rng.uniform(-30, -20, 3), self.nb)
        self.bandwidth_hz = 8000.0

    def points(self, t):
        pts = []
        for b in range(self.nb):
            ang = 2 * math.pi * (self.rps * t + b / self.nb) + self.phase
            for frac in (0.35, 0.7, 1.0):
                pts.append(np.column_stack([self.c[0] + frac * self.r * np.cos(ang),
                                            self.c[1] + frac * self.r * np.sin(ang),
                                            np.full_like(t, self.c[2]) + 0.004 * np.sin(ang)]))
        return np.stack(pts), np.ones(len(t), bool)


class DeskFan:
    """An oscillating desk fan on a table: blades in the plane normal to an axis that sweeps +-40 deg."""

    def __init__(self, rng, room, duration_s: float):
        self.c = np.array([*room.inside(rng, 0.5, near=room["device_m"][:2], rmin=1.0, rmax=4.0),
                           rng.uniform(0.7, 1.1)])
        self.nb, self.r = int(rng.integers(3, 6)), float(rng.uniform(0.12, 0.2))
        self.rps = float(rng.uniform(15, 25))
        self.axis0, self.sweep_hz = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.05, 0.12))
        self.ts_db = np.tile(rng.uniform(-30, -20, 2), self.nb)
        self.bandwidth_hz = 24000.0

    def points(self, t):
        yaw = self.axis0 + math.radians(40) * np.sin(2 * math.pi * self.sweep_hz * t)
        u = np.column_stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(t)])  # in the blade plane, horizontal
        v = np.array([0.0, 0.0, 1.0])
        pts = []
        for b in range(self.nb):
            ang = 2 * math.pi * (self.rps * t + b / self.nb)
            for frac in (0.5, 1.0):
                pts.append(self.c + frac * self.r * (u * np.cos(ang)[:, None] + v * np.sin(ang)[:, None]))
        return np.stack(pts), np.ones(len(t), bool)


class Curtain:
    def __init__(self, rng, room, duration_s: float):
        sx, sy, _ = room["size_m"]
        self.wall_y = sy - 0.1  # the wall facing the device
        self.x0, self.w = float(rng.uniform(0.2, max(0.3, sx - 2.7))), float(rng.uniform(1.0, 2.5))
        self.z0, self.hgt = float(rng.uniform(0.3, 0.8)), float(rng.uniform(1.0, 1.8))
        gx, gz = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 4))
        self.gx, self.gz = gx.ravel(), gz.ravel()
        self.freqs = rng.uniform(0.1, 1.2, (len(self.gx), 3))
        self.phases = rng.uniform(0, 2 * math.pi, (len(self.gx), 3))
        v_rms = float(rng.uniform(0.02, 0.15))
        self.amp = v_rms / (2 * math.pi * self.freqs * math.sqrt(3 / 2))
        self.gust_hz, self.gust_phase = float(rng.uniform(0.02, 0.06)), float(rng.uniform(0, 2 * math.pi))
        self.ts_db = rng.uniform(-38, -28, len(self.gx))
        self.bandwidth_hz = 4000.0

    def points(self, t):
        gust = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * math.pi * self.gust_hz * t + self.gust_phase))
        disp = np.einsum("pk,pkt->pt", self.amp, np.sin(2 * math.pi * self.freqs[:, :, None] * t
                                                        + self.phases[:, :, None])) * gust
        x = np.broadcast_to((self.x0 + self.gx * self.w)[:, None], disp.shape)
        z = np.broadcast_to((self.z0 + self.gz * self.hgt)[:, None], disp.shape)
        return np.stack([x, self.wall_y - 0.05 - disp, z], axis=-1), np.ones(len(t), bool)


# ------------------------------------------------------------------------------------------------------ room
class Room(dict):
    def inside(self, rng, margin: float, near=None, rmin: float = 0.0, rmax: float = 1e9) -> np.ndarray:
        sx, sy, _ = self["size_m"]
        for _ in range(200):
            p = rng.uniform([margin, margin], [sx - margin, sy - margin])
            if near is None or rmin <= np.linalg.norm(p - near) <= rmax:
                return p
        return p


def make_room(rng) -> Room:
    size = np.array([rng.uniform(3.0, 7.0), rng.uniform(3.0, 6.0), rng.uniform(2.4, 3.0)])
    device = np.array([rng.uniform(0.5, size[0] - 0.5), rng.uniform(0.1, 0.3), rng.uniform(0.6, 1.6)])
    door = np.array([rng.choice([0.15, size[0] - 0.15]), rng.uniform(0.5 * size[1], size[1] - 0.4)])
    return Room(size_m=size, device_m=device, door_m=door)


def mirror(point_m: np.ndarray, wall: int, size_m: np.ndarray) -> np.ndarray:
    """``point_m`` (3,) mirrored in wall ``wall`` (0..5: x = 0, x = Lx, y = 0, y = Ly, floor, ceiling)."""
    axis = wall // 2
    image = point_m.copy()
    image[axis] = 2 * (0.0 if wall % 2 == 0 else size_m[axis]) - image[axis]
    return image


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of ``mask``."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


# ------------------------------------------------------------------------------------------------- rendering
def render_clip(spec: dict, out_wav: Path) -> None:
    """Render one clip (``spec`` from :func:`clip_specs`) to ``out_wav`` + sidecar + labels."""
    import soundfile as sf
    from scipy.signal import butter, resample_poly, sosfiltfilt

    from uspd.physics import air_absorption_db_per_m, speed_of_sound_m_s

    rng = np.random.default_rng(spec["seed"])
    fs, dur = spec["sample_rate"], spec["duration_s"]
    f0 = float(rng.uniform(35000, 42000) if fs == 96000 else rng.uniform(18500, 21500))
    temp_c, rh = float(rng.uniform(18, 28)), float(rng.uniform(30, 70))
    c = speed_of_sound_m_s(temp_c)
    alpha_db_m = float(air_absorption_db_per_m(f0, temp_c, rh))
    room = make_room(rng)
    n_mics = int(rng.choice([2, 3, 4, 4, 6, 8]))
    ring = float(rng.uniform(0.025, 0.05))
    ang = 2 * math.pi * np.arange(n_mics) / n_mics + rng.uniform(0, 2 * math.pi)
    mics_rel = np.column_stack([ring * np.cos(ang), ring * np.sin(ang), np.full(n_mics, rng.uniform(0.005, 0.04))])
    spk = room["device_m"]
    mics = spk + mics_rel
    lo, hi = spec["beam_p"]
    beam_p = lo + float(rng.uniform(0.0, 1.0)) * (hi - lo)
    facing = np.array([0.0, 1.0, 0.0])
    mic_gain = 10 ** (rng.uniform(-2, 2, n_mics) / 20)
    clock = 1.0 + rng.uniform(-1.0, 1.0) * spec["clock_ppm"] * 1e-6  # capture vs playback clock

    def beam(vec):  # loudspeaker directivity towards vec (..., 3)
        cos = (vec @ facing) / np.maximum(np.linalg.norm(vec, axis=-1), 1e-9)
        return ((1 + cos) / 2) ** beam_p

    movers, confusers = [], []
    for kind in spec["movers"]:
        if kind == "walker":
            movers.append(Walker(rng, room, float(rng.uniform(1.5, 5.0)), dur))
        elif kind == "pet":
            movers.append(Pet(rng, room, dur))
        elif kind in ("ceiling_fan", "desk_fan", "curtain"):
            movers.append({"ceiling_fan": CeilingFan, "desk_fan": DeskFan, "curtain": Curtain}[kind](rng, room, dur))
            confusers.append({"ceiling_fan": "fan", "desk_fan": "fan", "curtain": "curtain"}[kind])
        elif kind == "hvac":
            confusers.append("hvac")
    fb = max([4000.0] + [getattr(m, "bandwidth_hz", 4000.0) for m in movers])
    if fs == 48000:
        fb = 4000.0  # the capture's anti-alias filter: nothing above 24 kHz reaches a 48 kHz recording
    nb = int(round(dur * fb))
    tb = np.arange(nb) / fb
    tc = np.arange(0.0, dur + 1.0 / CONTROL_HZ, 1.0 / CONTROL_HZ)
    direct_dbfs, coupling_db = float(rng.uniform(-14, -6)), float(rng.uniform(-1, 1)) * spec["coupling_db"]
    k0 = 10 ** ((direct_dbfs - 20 * math.log10(1 / ring) - coupling_db) / 20)  # emitted level at 1 m on axis

    base = np.zeros((n_mics, nb), np.complex128)
    size = room["size_m"]
    lo, hi = spec["reflection"]
    refl = lo + rng.uniform(0.0, 1.0, 6) * (hi - lo)
    furniture = np.column_stack([rng.uniform(0.2, size[0] - 0.2, 12), rng.uniform(0.5, size[1] - 0.2, 12),
                                 rng.uniform(0.0, 1.2, 12)])
    furniture_ts = rng.uniform(-20, -5, 12)
    # static field: direct path, first-order wall images (speaker -> wall -> mic = speaker -> mirrored mic), furniture
    static_l, static_a = [], []
    for m in range(n_mics):
        d = np.linalg.norm(mics[m] - spk)  # direct path: its level is the device's coupling, not free field
        static_l.append([d])
        static_a.append([10 ** (direct_dbfs / 20) * ring / d])
        for w in range(6):
            image = mirror(mics[m], w, size)
            path = np.linalg.norm(image - spk)
            static_l[m].append(path)
            static_a[m].append(k0 * refl[w] * beam(image - spk) / path * 10 ** (-alpha_db_m * path / 20))
        r1 = np.linalg.norm(furniture - spk, axis=1)
        r2 = np.linalg.norm(furniture - mics[m], axis=1)
        static_l[m] += list(r1 + r2)
        static_a[m] += list(k0 * 10 ** (furniture_ts / 20) * beam(furniture - spk) / (r1 * r2)
                            * 10 ** (-alpha_db_m * (r1 + r2) / 20))
    hvac = "hvac" in confusers
    for m in range(n_mics):
        ls, a_s = np.array(static_l[m]), np.array(static_a[m])
        if hvac:  # slow path-length wander of every echo (not the direct path)
            rms_m, cut = float(rng.uniform(0.3e-3, 3e-3)), float(rng.uniform(0.2, 1.5))
            sos = butter(2, cut, fs=CONTROL_HZ, output="sos")
            wander = sosfiltfilt(sos, rng.standard_normal((len(ls) - 1, len(tc))), axis=1)
            wander *= rms_m / np.maximum(wander.std(axis=1, keepdims=True), 1e-12)
            lt = np.vstack([np.full(len(tc), ls[0]), ls[1:, None] + wander])
            lb = np.array([np.interp(tb, tc, row) for row in lt])
            base[m] += (a_s[:, None] * np.exp(-2j * math.pi * f0 * lb / c)).sum(axis=0)
        else:
            base[m] += np.sum(a_s * np.exp(-2j * math.pi * f0 * ls / c))
    # moving targets: lit by the loudspeaker and by its six first-order wall images (speaker -> wall -> target)
    transmitters = [(spk, 1.0, None)]
    if spec["bounces"]:
        for w in range(6):
            transmitters.append((mirror(spk, w, size), refl[w], w // 2))
    for mover in movers:
        pts, present = mover.points(tc)  # (P, Tc, 3), (Tc,)
        gate = np.interp(tb, tc, present.astype(float))
        ts_amp = 10 ** (np.asarray(mover.ts_db) / 20)
        for tx, gain, axis in transmitters:
            out_vec = pts - tx
            if axis is not None:  # the ray leaves the real loudspeaker mirrored
                out_vec[..., axis] *= -1
            r1 = np.linalg.norm(pts - tx, axis=2)
            bm = beam(out_vec) * gain
            for m in range(n_mics):
                r2 = np.linalg.norm(pts - mics[m], axis=2)
                length = r1 + r2
                amp = k0 * ts_amp[:, None] * bm / (r1 * r2) * 10 ** (-alpha_db_m * length / 20)
                for p in range(len(pts)):
                    lb = np.interp(tb, tc, length[p])
                    ab = np.interp(tb, tc, amp[p]) * gate
                    base[m] += ab * np.exp(-2j * math.pi * f0 * lb / c)
    up = int(round(fs / math.gcd(int(fs), int(fb))))
    down = int(round(fb / math.gcd(int(fs), int(fb))))
    n = int(round(dur * fs))
    t = np.arange(n) / fs
    carrier = np.exp(2j * math.pi * f0 * clock * t)
    noise_db = float(rng.uniform(-90, -74))
    noise_rms = 10 ** (noise_db / 20)
    out = np.empty((n, n_mics), np.float64)
    for m in range(n_mics):
        bb = resample_poly(base[m], up, down, window=("kaiser", 12.0))[:n]  # images below -110 dB
        out[:, m] = mic_gain[m] * np.real(bb * carrier) + noise_rms * rng.standard_normal(n)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(out * 32767), -32768, 32767).astype(np.int16)
    tmp = out_wav.with_suffix(".part.wav")
    sf.write(str(tmp), pcm, fs, subtype="PCM_16")
    intervals = []
    for mover in movers:
        if hasattr(mover, "labels"):
            intervals += mover.labels(dur)
    intervals += [{"start_s": 0.0, "end_s": dur, "kind": k} for k in sorted(set(confusers))]
    heard_hz = f0 * clock if spec.get("carrier_known") else f0  # a device that measured its clock offset
    sidecar = {"sample_rate": fs, "carrier_hz": [heard_hz], "mic_positions_m": np.round(mics_rel, 6).tolist(),
               "reference": None, "temperature_c": round(temp_c, 1), "humidity_pct": round(rh, 1)}
    labels = {"simulator": "benchmarks/second_simulator.py", "seed": spec["seed"], "duration_s": dur,
              "set_kind": spec["kind"], "movers": spec["movers"], "intervals": intervals,
              "device": {"n_mics": n_mics, "ring_m": round(ring, 4), "clock_ppm": round((clock - 1) * 1e6, 2),
                         "direct_dbfs": round(direct_dbfs, 2), "coupling_db": round(coupling_db, 2),
                         "beam_p": round(beam_p, 2), "noise_dbfs": round(noise_db, 2)}}
    out_wav.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))
    out_wav.with_suffix(".labels.json").write_text(json.dumps(labels, indent=1))
    os.replace(tmp, out_wav)  # the WAV last: a clip with its WAV is complete


def clip_specs(seed: int, walks: int, negatives: int, negative_s: float, clock_ppm: float = 0.0,
               coupling_db: float = 10.0, beam_p: tuple[float, float] = (0.5, 2.0), bounces: bool = True,
               reflection: tuple[float, float] = (0.5, 0.9), carrier_known: bool = False) -> list[dict]:
    """The set: walk-ins (20 s; a third with a confuser) and negative clips (one or two confusers, or none); every
    third clip at 48 kHz."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x2D51]))
    confusers = ["ceiling_fan", "desk_fan", "curtain", "hvac", "pet"]
    specs = []
    for i in range(walks):
        movers = ["walker"] + ([str(rng.choice(confusers))] if rng.random() < 1 / 3 else [])
        specs.append({"name": f"walk_{i:04d}", "kind": "walk", "duration_s": 20.0, "movers": movers})
    for i in range(negatives):
        k = int(rng.choice([0, 1, 1, 1, 2]))
        movers = [str(x) for x in rng.choice(confusers, size=k, replace=False)]
        specs.append({"name": f"negative_{i:04d}", "kind": "negative", "duration_s": negative_s, "movers": movers})
    for i, s in enumerate(specs):
        s["sample_rate"] = 48000 if i % 3 == 2 else 96000
        s["seed"] = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        s.update(clock_ppm=clock_ppm, coupling_db=coupling_db, beam_p=tuple(beam_p), bounces=bounces,
                 reflection=tuple(reflection), carrier_known=carrier_known)
    return specs


def _worker_init() -> None:
    from uspd.evaluate.parallel import single_thread_math

    single_thread_math()


def _render_task(task):
    spec, out = task
    render_clip(spec, Path(out))
    return spec["name"]


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LO,HI") from None
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= LO <= HI")
    return lo, hi


#: The device and scene factors the walkers are broken down by: (name, where it is read, bin edges, unit).
FACTORS = (("direct coupling", "coupling_db", (-3.0, 3.0), "dB"), ("mics", "n_mics", (3, 5, 7), ""),
           ("sample rate", "sample_rate", (60000,), "Hz"), ("beam exponent p", "beam_p", (1.0, 1.5), ""),
           ("self-noise", "noise_dbfs", (-85.0, -79.0), "dBFS"),
           ("room re noise", "room_re_noise_db", (70.0, 76.0), "dB"),
           ("distance", "distance_m", (2.0, 3.0), "m"), ("confusers", "n_confusers", (1, 2), ""))


def _bin_label(edges: tuple, k: int, unit: str) -> str:
    lo = f"{edges[k - 1]:g}" if k > 0 else ""
    hi = f"{edges[k]:g}" if k < len(edges) else ""
    text = f"< {hi}" if not lo else (f">= {lo}" if not hi else f"{lo} to < {hi}")
    return f"{text} {unit}".rstrip()


def device_tags(labels: dict) -> dict:
    """A clip's device factors from its labels: this simulator's ``device`` block, or for a clip of uspd's own
    simulator (``uspd dataset eval``) the same factors worked out from its resolved scene. ``room_re_noise_db``: how
    loud the room is against the self-noise, the free-field direct path's level (dBFS at the mic ring) over the
    noise; ours has no beam exponent (a piston or a point source), so that factor is absent. Labels with neither
    (a recording from elsewhere) give no device factors."""
    if "device" in labels:
        tags = dict(labels["device"])
    elif "device" not in labels.get("scene", {}):
        return {}
    else:
        from uspd.simulate.room import PRESSURE_AT_1M_PER_FS

        dev = labels["scene"]["device"]
        ring_m = float(np.mean(np.linalg.norm(np.asarray(dev["mic_positions_m"], float), axis=1)))
        free_field_dbfs = (dev["emission_dbfs"] + dev["speaker_gain_db"] + 20 * math.log10(PRESSURE_AT_1M_PER_FS)
                           - 20 * math.log10(ring_m))
        tags = {"n_mics": dev["n_mics"], "coupling_db": dev["coupling_db"], "noise_dbfs": dev["self_noise_dbfs"],
                "direct_dbfs": free_field_dbfs + dev["coupling_db"]}
    tags["room_re_noise_db"] = tags["direct_dbfs"] - tags["coupling_db"] - tags["noise_dbfs"]
    return tags


def walkers_found(folder: Path, metrics: dict) -> list[tuple[dict, dict]]:
    """Each labelled major interval (<= 5 m) of a recording in ``folder/walk``: (its clip's :func:`device_tags`, the
    sidecar's sample rate, its own distance and how many kinds of confuser run during it; {detector: found}), found
    unless ``metrics`` (``uspd evaluate --json``) lists it among that detector's ``missed_intervals``. Empty when the
    set has no walk-ins."""
    from uspd.evaluate.metrics import confusers_near
    from uspd.evaluate.runner import find_recordings
    from uspd.recording.format import read_sidecar
    from uspd.recording.labels import read_labels

    detectors = list(metrics["detectors"])
    missed = {d: {(str(Path(m["clip"]).resolve()), round(float(m["start_s"]), 3))
                  for m in metrics["detectors"][d]["missed_intervals"] if m["kind"] == "major"} for d in detectors}
    walkers = []
    walk_dir = folder / "walk"  # absent when the set has no walk-ins (--walks 0)
    for wav in find_recordings(walk_dir) if walk_dir.is_dir() else []:  # the recordings uspd evaluate scored
        labels, sample_rate = read_labels(wav), read_sidecar(wav).sample_rate
        for iv in labels.of_kind("major"):
            if iv.distance_m is None or iv.distance_m <= MAJOR_RANGE_M:  # no distance: counted, not binned by it
                tags = {**device_tags(labels.extra), "sample_rate": sample_rate,
                        "n_confusers": len(confusers_near(labels, iv, 0.0))}
                if iv.distance_m is not None:
                    tags["distance_m"] = iv.distance_m
                key = (str(wav.resolve()), round(float(iv.start_s), 3))
                walkers.append((tags, {d: key not in missed[d] for d in detectors}))
    return walkers


def recall_by_factor(walkers: list[tuple[dict, dict]]) -> list[tuple[str, str, int, dict]]:
    """Major recall of ``walkers`` (:func:`walkers_found`) per device / scene factor bin: rows (factor, bin, n,
    {detector: recall}); empty bins and factors a walker's device lacks are left out."""
    rows = []
    for name, key, edges, unit in FACTORS:
        for k in range(len(edges) + 1):
            sel = [found for tags, found in walkers
                   if key in tags and int(np.searchsorted(edges, tags[key], side="right")) == k]
            if sel:
                rows.append((name, _bin_label(edges, k, unit), len(sel),
                             {d: sum(f[d] for f in sel) / len(sel) for d in sel[0]}))
    return rows


def print_recall_by_factor(rows: list[tuple[str, str, int, dict]], whose: str = "") -> None:
    detectors = list(rows[0][3]) if rows else []
    print(f"\nmajor recall (<= 5 m) of the {whose}walkers by factor:")
    print(f"{'factor':<18}{'bin':<18}{'n':>5}" + "".join(f"{d:>9}" for d in detectors))
    for name, label, n, recall in rows:
        print(f"{name:<18}{label:<18}{n:>5}" + "".join(f"{recall[d]:>9.1%}" for d in detectors))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the recordings (resumable)")
    ap.add_argument("--seed", type=int, default=1, help="set seed (this renderer's own; any value)")
    ap.add_argument("--walks", type=int, default=48, help="walk-in clips (20 s each)")
    ap.add_argument("--negatives", type=int, default=36, help="negative clips (no person)")
    ap.add_argument("--negative-s", type=float, default=150.0, help="length of each negative clip (s)")
    ap.add_argument("--workers", type=int, default=2, help="render processes")
    ap.add_argument("--clock-ppm", type=float, default=0.0,
                    help="capture clock offset from the playback clock, drawn in +-this (ppm; 0: one shared clock, "
                         "as on a single codec; separate USB devices differ by tens of ppm)")
    ap.add_argument("--carrier-known", action="store_true",
                    help="with --clock-ppm: the sidecar gives the carrier as the capture clock hears it (a device "
                         "that measured its clock offset), so only the offset itself differs")
    ap.add_argument("--coupling-db", type=float, default=10.0,
                    help="direct loudspeaker-to-mic coupling drawn in +-this around free field (dB): the echoes' "
                         "level relative to the carrier the mics hear")
    ap.add_argument("--beam-p", type=_pair, default=(0.5, 2.0),
                    help="loudspeaker directivity ((1 + cos theta) / 2) ** p, p drawn in LO,HI (0,0: omni)")
    ap.add_argument("--reflection", type=_pair, default=(0.5, 0.9),
                    help="wall amplitude reflection coefficients drawn in LO,HI (soft furnishing absorbs: lower)")
    ap.add_argument("--no-bounces", action="store_true",
                    help="moving targets echo only on the direct path (no speaker -> wall -> target paths)")
    ap.add_argument("--config", default=None, help="uspd config for the evaluation (e.g. another model)")
    ap.add_argument("--render-only", action="store_true", help="render the set, do not evaluate")
    ap.add_argument("--json", default=None, help="also write the evaluation's metrics here (uspd evaluate --json)")
    ap.add_argument("--also", type=Path, action="append", default=None, metavar="DIR",
                    help="a set of uspd's own simulator (uspd dataset eval) whose walk-ins are scored with the same "
                         "config and broken down by the same factors after this set's (repeatable)")
    args = ap.parse_args(argv)
    if args.walks < 0 or args.negatives < 0 or args.negative_s <= 0 or args.workers < 1:
        ap.error("--walks/--negatives must be >= 0, --negative-s > 0, --workers >= 1")
    if args.reflection[1] >= 1.0:
        ap.error("--reflection: coefficients must be below 1")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"{args.out}: not a folder")
    args.also = args.also or []
    from uspd.evaluate.runner import EvaluationError, find_recordings

    for folder in args.also:  # checked before this set is rendered and scored
        try:
            find_recordings(folder / "walk")
        except EvaluationError as exc:
            ap.error(f"--also {folder}: {exc} (give a set made by uspd dataset eval)")
    from uspd.evaluate.parallel import imap_progress

    specs = clip_specs(args.seed, args.walks, args.negatives, args.negative_s, args.clock_ppm, args.coupling_db,
                       args.beam_p, not args.no_bounces, args.reflection, args.carrier_known)
    settings = {"seed": args.seed, "negative_s": args.negative_s, "clock_ppm": args.clock_ppm,
                "coupling_db": args.coupling_db, "beam_p": list(args.beam_p), "reflection": list(args.reflection),
                "bounces": not args.no_bounces, "carrier_known": args.carrier_known}
    marker = args.out / "second_simulator.json"  # a resumed folder must hold clips made with the same settings
    if marker.exists():
        try:
            before = json.loads(marker.read_text())
        except (OSError, ValueError):
            ap.error(f"{marker}: unreadable; delete the folder or choose another --out")
        if before != settings:
            ap.error(f"{args.out}: rendered with other settings ({before}); choose another --out")
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(settings))
    todo = [(s, str(args.out / s["kind"] / f"{s['name']}.wav")) for s in specs
            if not (args.out / s["kind"] / f"{s['name']}.wav").exists()]
    for _ in imap_progress(_render_task, todo, args.workers, _worker_init, (), desc="render", progress=True):
        pass
    hours = sum(s["duration_s"] for s in specs if s["kind"] == "negative") / 3600
    print(f"{len(specs)} clips in {args.out} ({len(todo)} rendered now): {args.walks} walk-ins, {args.negatives} "
          f"negative clips ({hours:.2f} h)", flush=True)
    if args.render_only:
        return 0

    def evaluate(folder: Path, json_path: Path, quiet: bool = False) -> int:
        cmd = ["uspd", "evaluate", str(folder), "--detector", "all", "--workers", str(args.workers),
               "--recall-levels", "0.8,0.9", "--json", str(json_path)]
        return subprocess.call(cmd + (["--config", args.config] if args.config else []),
                               stdout=subprocess.DEVNULL if quiet else None)

    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(args.json) if args.json else Path(tmp) / "metrics.json"
        rc = evaluate(args.out, json_path)
        rows = recall_by_factor(walkers_found(args.out, json.loads(json_path.read_text()))) if rc == 0 else []
        if rows:
            print_recall_by_factor(rows)
        walkers = []  # the same breakdown for uspd's own simulator: which factors it covers and how the detectors fare
        for k, folder in enumerate(args.also if rc == 0 else []):
            rc = evaluate(folder / "walk", Path(tmp) / f"also_{k}.json", quiet=True)
            if rc != 0:
                return rc
            walkers += walkers_found(folder, json.loads((Path(tmp) / f"also_{k}.json").read_text()))
        if walkers:
            print_recall_by_factor(recall_by_factor(walkers), "uspd simulator's ")
    return rc


if __name__ == "__main__":
    sys.exit(main())
