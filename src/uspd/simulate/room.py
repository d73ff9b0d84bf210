"""The room and the device: geometry resolved from a scene spec, and the static (zero-Doppler) acoustic field.

Room coordinates: metres, origin in a floor corner, x along the first wall, z up. The loudspeaker sits at
``device_position`` and is the origin of DEVICE coordinates (axes parallel to the room's); mics are given in device
coordinates, as in the sidecar.

Static field (one FIR per mic): the direct path speaker->mic, image sources of the shoebox up to ``image_order``
(Allen & Berkley, "Image method for efficiently simulating small-room acoustics", JASA 65, 1979) with per-wall
amplitude reflection coefficients, and furniture point scatterers (amplitude 10^(TS/20) / (r1 r2)). Every path has
spreading 1/L, ISO 9613-1 air absorption at the (mean) carrier, and the device's playback->capture latency and
per-mic delay (the mic phase spread). Taps are Kaiser-windowed sinc fractional delays (64 taps): flat to well
under 0.01 dB at 0.42 fs (40 kHz at 96 kHz).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from uspd import physics
from uspd.simulate.scene import WALL_REFLECTION_RANGE, Scene

#: Pressure at 1 m per unit drive, in mic full-scale units at 0 dB mic gain: puts the direct-path tone at about
#: -16 dBFS for a -6 dBFS drive and a 4 cm speaker-mic distance.
PRESSURE_AT_1M_PER_FS = 0.0127
FIR_HALF_TAPS = 32
FIR_KAISER_BETA = 6.0
#: Point scatterers' target strength range (dB re 1 m^2): chairs, tables, shelves, a sofa.
SCATTERER_TS_DB = (-22.0, -8.0)


@dataclass
class World:
    """Resolved geometry and device: everything fixed for one render (seeded)."""

    size_m: np.ndarray            # (3,)
    reflection: np.ndarray        # (6,) x0, x1, y0, y1, floor, ceiling
    image_order: int
    device_position_m: np.ndarray  # (3,) loudspeaker, room coordinates
    mic_offsets_m: np.ndarray     # (n_mics, 3) device coordinates
    scatterers: np.ndarray        # (K, 4) x, y, z, ts_db
    door_m: np.ndarray            # (2,) door centre on a wall
    door_normal: np.ndarray       # (2,) unit vector pointing out of the room through the door
    speaker_gain: float           # linear (unit spread)
    mic_gain: np.ndarray          # (n_mics,) linear
    mic_delay_s: np.ndarray       # (n_mics,) per-mic delay (phase spread at the carrier)
    latency_s: float
    self_noise_rms: np.ndarray    # (n_mics,) full-scale units
    capture_bits: int
    emission_amplitude: float     # tone drive peak
    sample_rate: int
    carriers_hz: np.ndarray       # (n_carriers,)
    c_m_s: float
    alpha_db_per_m: np.ndarray    # (n_carriers,) ISO 9613-1 at each carrier
    temperature_c: float
    humidity_pct: float
    spread: dict                  # the unit-spread values as drawn (dB, deg, s), for the resolved spec
    nominal_carriers_hz: np.ndarray  # (n_carriers,) what the device believes it emits (the sidecar's); carriers_hz
    #                                  is what the capture clock hears (they differ by the clock offset)
    speaker_axis: np.ndarray = None   # (3,) unit vector of the loudspeaker's beam axis, room coordinates
    speaker_radius_m: float = 0.0     # piston radius (0: omnidirectional)
    coupling_db: float = 0.0          # direct speaker->mic path re free field

    def speaker_gain_towards(self, direction: np.ndarray, carrier_hz: float) -> np.ndarray:
        """Loudspeaker amplitude re on-axis towards ``direction`` (..., 3) (any length, room coordinates) at
        ``carrier_hz``: :func:`uspd.physics.piston_directivity`; 1 for an omnidirectional speaker. Shape (...)."""
        direction = np.asarray(direction, dtype=float)
        if self.speaker_radius_m <= 0:
            return np.ones(direction.shape[:-1])
        norm = np.linalg.norm(direction, axis=-1)
        cos_t = (direction @ self.speaker_axis) / np.where(norm > 0, norm, 1.0)
        return physics.piston_directivity(cos_t, self.speaker_ka(carrier_hz))

    def speaker_ka(self, carrier_hz: float) -> float:
        """k a of the loudspeaker's piston at ``carrier_hz``: 2 pi f a / c (0 for a point source)."""
        return 2.0 * math.pi * carrier_hz * self.speaker_radius_m / self.c_m_s

    @property
    def n_mics(self) -> int:
        return len(self.mic_offsets_m)

    @property
    def mic_positions_room(self) -> np.ndarray:
        return self.device_position_m[None, :] + self.mic_offsets_m

    def inside_distance(self, xy: np.ndarray) -> np.ndarray:
        """Signed horizontal distance (m) to the nearest wall: positive inside the room. xy: (..., 2)."""
        x, y = xy[..., 0], xy[..., 1]
        return np.minimum(np.minimum(x, self.size_m[0] - x), np.minimum(y, self.size_m[1] - y))

    def visibility(self, pos: np.ndarray) -> np.ndarray:
        """0..1 gain of a reflector at ``pos`` (..., 3): ultrasound does not pass walls; 10 cm fade at the door."""
        return np.clip(self.inside_distance(pos[..., :2]) / 0.2 + 0.5, 0.0, 1.0)

    def distance_to_device(self, pos: np.ndarray) -> np.ndarray:
        return np.linalg.norm(pos - self.device_position_m, axis=-1)

    def clamp_inside(self, xy: np.ndarray, margin: float = 0.4) -> np.ndarray:
        lo = np.full(2, margin)
        hi = self.size_m[:2] - margin
        return np.clip(xy, lo, np.maximum(lo, hi))

    def point_at_distance(self, rng: np.random.Generator, distance_m: float, margin: float = 0.4,
                          z: float = 0.0) -> np.ndarray:
        """A random floor point (x, y) about ``distance_m`` horizontally from the device, inside the room."""
        dev = self.device_position_m[:2]
        best, best_err = None, math.inf
        for _ in range(200):
            ang = rng.uniform(0, 2 * math.pi)
            p = dev + distance_m * np.array([math.cos(ang), math.sin(ang)])
            q = self.clamp_inside(p, margin)
            err = abs(np.linalg.norm(q - dev) - distance_m) + 10 * np.linalg.norm(q - p)
            if err < best_err:
                best, best_err = q, err
            if err < 0.05:
                break
        return best

    def door_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(outside, inside) floor points on either side of the door (1 m out, 0.6 m in)."""
        return self.door_m + 1.0 * self.door_normal, self.door_m - 0.6 * self.door_normal

    def sidecar_extra(self) -> dict:
        """Device facts a real device could know (no ground truth about the scene)."""
        return {"device": "uspd-simulator", "temperature_c": round(self.temperature_c, 2),
                "humidity_pct": round(self.humidity_pct, 2),
                "emission_dbfs": round(20 * math.log10(self.emission_amplitude), 2),
                "capture_bits": self.capture_bits}


def _wall_point(rng: np.random.Generator, size: np.ndarray, wall: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A point on wall ``wall`` (0: x=0, 1: x=Lx, 2: y=0, 3: y=Ly) and the wall's outward normal."""
    axis, high = divmod(wall, 2)
    other = 1 - axis
    p = np.zeros(2)
    p[axis] = size[axis] if high else 0.0
    p[other] = rng.uniform(margin, max(margin, size[other] - margin))
    return p, _outward(wall)


def _outward(wall: int) -> np.ndarray:
    """(2,) outward unit normal of wall ``wall`` (0: x=0, 1: x=Lx, 2: y=0, 3: y=Ly)."""
    axis, high = divmod(wall, 2)
    n = np.zeros(2)
    n[axis] = 1.0 if high else -1.0
    return n


def _pick(given, drawn):
    """The spec's value if given, else the drawn one. Every candidate is drawn whether used or not, so the
    random stream (and every later choice) is the same for a spec and for its fully resolved copy."""
    return drawn if given is None else given


def resolve_world(scene: Scene, rng: np.random.Generator) -> World:
    """Draw every unspecified room and device detail from ``rng`` (ranges in ``uspd.simulate.scene``)."""
    r, d = scene.room, scene.device
    size = np.array(_pick(r.size_m, [rng.uniform(2.5, 8.0), rng.uniform(2.5, 8.0), rng.uniform(2.4, 3.2)]), float)
    refl_drawn = rng.uniform(*WALL_REFLECTION_RANGE, 6)
    refl = refl_drawn if r.reflection is None else np.broadcast_to(np.array(r.reflection, float), (6,)).copy()
    # device: on a shelf/table near a wall
    dev_wall = int(rng.integers(0, 4))
    p, n = _wall_point(rng, size, dev_wall, 0.4)
    xy = p - n * rng.uniform(0.1, 0.5)
    dev = np.array(_pick(r.device_position_m, [xy[0], xy[1], rng.uniform(0.4, min(1.5, size[2] - 0.3))]), float)
    if r.device_position_m is not None:
        dev_wall = int(np.argmin([dev[0], size[0] - dev[0], dev[1], size[1] - dev[1]]))
    # door: on a wall, preferably not the device's
    walls = [w for w in range(4) if w != dev_wall]
    door, normal = _wall_point(rng, size, int(rng.choice(walls)), 0.6)
    if r.door_m is not None:
        door = np.array(r.door_m, dtype=float)
        w = int(np.argmin([door[0], size[0] - door[0], door[1], size[1] - door[1]]))
        normal = np.zeros(2)
        normal[w // 2] = 1.0 if w % 2 else -1.0
    # scatterers (furniture)
    k_drawn = int(rng.integers(3, 9))
    k = len(r.scatterers) if isinstance(r.scatterers, list) else _pick(r.scatterers, k_drawn)
    scat = np.zeros((int(k), 4))
    for i in range(int(k)):
        while True:
            xy = rng.uniform([0.2, 0.2], size[:2] - 0.2)
            if np.linalg.norm(xy - dev[:2]) > 0.5:
                break
        scat[i] = [xy[0], xy[1], rng.uniform(0.3, 1.2), rng.uniform(*SCATTERER_TS_DB)]
    if isinstance(r.scatterers, list):
        scat = np.array(r.scatterers, dtype=float).reshape(-1, 4)
    # device
    n_mics = d.n_mics
    radius = _pick(d.ring_radius_m, rng.uniform(0.03, 0.05))
    height = _pick(d.mic_height_m, rng.uniform(0.0, 0.05))
    ang = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(n_mics) / n_mics
    mics = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.full(n_mics, height)], axis=1)
    if d.mic_positions_m is not None:
        mics = np.array(d.mic_positions_m, dtype=float)
    nominal = np.array(scene.carriers_hz, dtype=float)
    carriers = nominal * (1.0 + 1e-6 * d.clock_ppm)  # as the capture clock hears the tone
    spk_db = float(_pick(d.speaker_gain_db, rng.uniform(-3, 3)))
    gain_db = np.array(_pick(d.mic_gain_db, rng.uniform(-2, 2, n_mics)), dtype=float)
    phase_deg = np.array(_pick(d.mic_phase_deg, rng.uniform(-30, 30, n_mics)), dtype=float)
    latency = float(_pick(d.latency_s, rng.uniform(0.002, 0.008)))
    noise_db = d.self_noise_dbfs + rng.uniform(-1.5, 1.5, n_mics)
    c = float(physics.speed_of_sound_m_s(scene.temperature_c))
    # loudspeaker axis: into the room from the device's wall +-40 deg, tilted -10..50 deg up (drawn last, so every
    # earlier draw is as it was before the speaker had an axis)
    inward = math.atan2(*(-_outward(dev_wall))[::-1])
    axis_deg = np.array(_pick(d.speaker_axis_deg, [math.degrees(inward) + rng.uniform(-40, 40),
                                                   rng.uniform(-10, 50)]), dtype=float)
    az, el = np.deg2rad(axis_deg)
    axis = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return World(
        size_m=size, reflection=refl, image_order=r.image_order, device_position_m=dev, mic_offsets_m=mics,
        scatterers=scat, door_m=np.asarray(door, float), door_normal=normal,
        speaker_gain=float(10 ** (spk_db / 20)), mic_gain=10 ** (gain_db / 20),
        mic_delay_s=np.deg2rad(phase_deg) / (2 * math.pi * nominal[0]), latency_s=latency,
        self_noise_rms=10 ** (noise_db / 20), capture_bits=d.capture_bits,
        emission_amplitude=float(10 ** (d.emission_dbfs / 20)), sample_rate=scene.sample_rate,
        carriers_hz=carriers, c_m_s=c,
        alpha_db_per_m=np.asarray(physics.air_absorption_db_per_m(carriers, scene.temperature_c,
                                                                  scene.humidity_pct, scene.pressure_kpa)),
        temperature_c=scene.temperature_c, humidity_pct=scene.humidity_pct,
        spread={"speaker_gain_db": spk_db, "mic_gain_db": gain_db.tolist(), "mic_phase_deg": phase_deg.tolist(),
                "latency_s": latency, "speaker_axis_deg": axis_deg.tolist()},
        nominal_carriers_hz=nominal, speaker_axis=axis, speaker_radius_m=float(d.speaker_radius_m),
        coupling_db=float(d.coupling_db),
    )


def image_sources(source_m: np.ndarray, size_m: np.ndarray, reflection: np.ndarray, order: int,
                  with_mirror: bool = False) -> tuple[np.ndarray, ...]:
    """Shoebox image sources up to ``order`` reflections.

    Returns positions (I, 3), amplitude products of the reflection coefficients (I,), reflection orders (I,) and,
    ``with_mirror``, per-axis signs (I, 3) (+-1, the parity 1 - 2q): a ray from image i to a point, times them, is
    the direction it leaves the real source in. The first entry is the source itself (order 0). Per axis, image
    coordinate (1 - 2q) x + 2 n L has |n - q| reflections on the wall at 0 and |n| on the wall at L.
    """
    per_axis = []
    for ax in range(3):
        opts = []
        for n in range(-order, order + 1):
            for q in (0, 1):
                n_lo, n_hi = abs(n - q), abs(n)
                if n_lo + n_hi > order:
                    continue
                coord = (1 - 2 * q) * source_m[ax] + 2 * n * size_m[ax]
                gain = reflection[2 * ax] ** n_lo * reflection[2 * ax + 1] ** n_hi
                opts.append((coord, gain, n_lo + n_hi, 1 - 2 * q))
        per_axis.append(opts)
    pos, gain, orders, signs = [], [], [], []
    for cx, gx, ox, sx in per_axis[0]:
        for cy, gy, oy, sy in per_axis[1]:
            if ox + oy > order:
                continue
            for cz, gz, oz, sz in per_axis[2]:
                o = ox + oy + oz
                if o > order:
                    continue
                pos.append((cx, cy, cz))
                gain.append(gx * gy * gz)
                orders.append(o)
                signs.append((sx, sy, sz))
    pos_a, gain_a, ord_a = np.array(pos), np.array(gain), np.array(orders)
    idx = np.argsort(ord_a, kind="stable")
    if with_mirror:
        return pos_a[idx], gain_a[idx], ord_a[idx], np.array(signs, float)[idx]
    return pos_a[idx], gain_a[idx], ord_a[idx]


@dataclass
class StaticPaths:
    """Every static path to every mic: delay (s, incl. latency and mic delay) and amplitude (incl. gains).

    delay_s, amplitude: (n_mics, P), length_m (n_mics, P); kind: (P,) 0 = direct, 1 = image source, 2 = scatterer; order: (P,).
    Path p is the same physical path (same image or scatterer) at every mic.
    """

    delay_s: np.ndarray
    amplitude: np.ndarray
    kind: np.ndarray
    order: np.ndarray
    length_m: np.ndarray


def static_paths(world: World) -> StaticPaths:
    """The static field's paths. The direct path (order 0) is the enclosure's coupling: free-field spreading times
    ``coupling_db``; every room path leaves the loudspeaker through its beam (``World.speaker_gain_towards`` at the
    mean carrier, like the air absorption), an image path in the direction its ray leaves the real speaker."""
    spk = world.device_position_m
    mics = world.mic_positions_room                                   # (M, 3)
    img, gain, order, mirror = image_sources(spk, world.size_m, world.reflection, world.image_order,
                                             with_mirror=True)
    alpha = float(np.mean(world.alpha_db_per_m))
    f_mean = float(np.mean(world.carriers_hz))
    leave = (mics[:, None, :] - img[None, :, :]) * mirror[None, :, :]  # (M, I, 3) ray leaving the real speaker
    beam = np.where(order[None, :] == 0, 10 ** (world.coupling_db / 20), world.speaker_gain_towards(leave, f_mean))
    length = np.linalg.norm(img[None, :, :] - mics[:, None, :], axis=2)  # (M, I)
    amp_img = beam * gain[None, :] / length * 10 ** (-alpha * length / 20)
    sc = world.scatterers
    r1 = np.linalg.norm(sc[:, :3] - spk, axis=1)                       # (K,)
    r2 = np.linalg.norm(sc[None, :, :3] - mics[:, None, :], axis=2)    # (M, K)
    amp_sc = 10 ** (sc[None, :, 3] / 20) / (r1[None, :] * r2) * 10 ** (-alpha * (r1[None, :] + r2) / 20)
    amp_sc = amp_sc * world.speaker_gain_towards(sc[:, :3] - spk, f_mean)[None, :]
    length_all = np.concatenate([length, r1[None, :] + r2], axis=1)
    amp_all = np.concatenate([amp_img, amp_sc], axis=1)
    scale = PRESSURE_AT_1M_PER_FS * world.speaker_gain * world.mic_gain[:, None]
    delay = length_all / world.c_m_s + world.latency_s + world.mic_delay_s[:, None]
    kind = np.concatenate([np.where(order == 0, 0, 1), np.full(len(sc), 2)])
    return StaticPaths(delay_s=delay, amplitude=amp_all * scale, kind=kind,
                       order=np.concatenate([order, np.ones(len(sc), int)]), length_m=length_all)


def fractional_delay_fir(delay_samples: np.ndarray, amplitude: np.ndarray, length: int | None = None
                         ) -> np.ndarray:
    """Sum of Kaiser-windowed-sinc fractional delays: h[n] = sum_p a_p k(n - d_p). delay, amplitude: (P,).

    Returns (length,) float64 with length >= max(delay) + FIR_HALF_TAPS + 1.
    """
    half = FIR_HALF_TAPS
    need = int(np.ceil(delay_samples.max())) + half + 1
    length = need if length is None else max(length, need)
    h = np.zeros(length + half + 1)
    base = np.floor(delay_samples).astype(int)
    frac = delay_samples - base
    k = np.arange(-half + 1, half + 1)
    x = k[None, :] - frac[:, None]                                      # (P, 2 half)
    win = np.i0(FIR_KAISER_BETA * np.sqrt(np.clip(1 - (x / half) ** 2, 0, None))) / np.i0(FIR_KAISER_BETA)
    taps = amplitude[:, None] * np.sinc(x) * win
    idx = base[:, None] + k[None, :]
    ok = idx >= 0
    np.add.at(h, idx[ok], taps[ok])
    return h[:length]
