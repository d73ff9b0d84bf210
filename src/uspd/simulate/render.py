"""Render a scene to mic signals + reference, in fixed blocks, bit-identical however ``render(n)`` is split.

Signal model (all in audio time; see ``room.py``, ``movers.py``, ``music.py`` for the physics):

    mic_m(t) = [speaker output] * h_m (static FIR: direct path, image sources, scatterers)
             + sum over mover points p, carriers f0 of  A env(t) G_m 10^(TS_p/20) vis_p(t) / (r1 r2)
                  * 10^(-alpha L / 20) cos(2 pi f0 (t - L_p,m(t)/c - latency - delay_m))
             + HVAC phase wander on the static paths + keys + self-noise, then 16-bit quantisation.

Engine: the timeline is cut into frames of B + 2W samples (B = 0.5 s) that overlap by 2W and carry a
partition-of-unity window (raised-cosine crossfades), so the sum of the windowed frames is the exact signal.
Every source is evaluated analytically at a reduced rate over a frame: the carrier part of the emission and the
mover echoes as complex baseband (6 kHz rate for people, 12 kHz for fan blades: +-6 kHz holds a 20 m/s blade tip at 45 kHz), the music at 24 kHz. Their
spectra are placed into one real-FFT spectrum per mic around each carrier (band-limited interpolation and
modulation in one step; whatever falls beyond Nyquist is dropped, as an ADC's anti-alias filter would). The
static field is the emission spectrum times each mic's FIR spectrum (the FFT is long enough for linear
convolution), so one inverse real FFT per mic and frame gives everything; frames overlap-add. Noise and clicks are
added to finished blocks with RNGs seeded by (seed, block index).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.fft as sfft

from uspd import physics
from uspd.recording.format import Sidecar
from uspd.recording.labels import Labels
from uspd.recording.labels import LabelInterval
from uspd.simulate.movers import NON_POINT_TYPES, Hvac, Keys, Mover, build_movers
from uspd.simulate.music import Music
from uspd.simulate.room import (PRESSURE_AT_1M_PER_FS, fractional_delay_fir, image_sources, resolve_world,
                                static_paths)
from uspd.simulate.scene import Scene, load_scene

#: Tone on/off ramp (raised cosine), seconds.
TONE_RAMP_S = 0.02
BLOCK_S = 0.5
CROSSFADE = 512
#: Mover echoes: per-mic direction factors are evaluated every COARSE_STEP baseband samples and interpolated.
COARSE_STEP = 4


class _Placer:
    """Adds the spectrum of Re{g_up(n) e^{j 2 pi f0 (n0 + n)/fs}} to a real-FFT spectrum of length N, where g is
    complex baseband sampled every D samples (M = N / D samples, zero beyond the frame)."""

    def __init__(self, n_fft: int, decim: int, f0_hz: float, fs: int):
        self.decim = decim
        self.m = n_fft // decim
        self.f0 = f0_hz
        self.fs = fs
        k0 = int(round(f0_hz * n_fft / fs))
        df = f0_hz - k0 * fs / n_fft
        self.ramp = np.exp(2j * math.pi * df * decim * np.arange(self.m) / fs)
        src = np.fft.fftfreq(self.m, 1.0 / self.m).astype(int)         # -M/2 .. M/2-1 in FFT order
        dst = k0 + src
        ok = (dst > 0) & (dst < n_fft // 2) & (src != -self.m // 2)
        self.src = np.flatnonzero(ok)
        self.dst = dst[ok]
        self.scale = decim / 2.0

    def frame_phase(self, n0: int) -> complex:
        """e^{j 2 pi f0 n0 / fs}, exact for long runs (n0 split into whole seconds and a remainder)."""
        q, r = divmod(n0, self.fs)
        cycles = math.fmod(self.f0 * q, 1.0) + self.f0 * r / self.fs
        return complex(np.exp(2j * math.pi * math.fmod(cycles, 1.0)))

    def add(self, spec: np.ndarray, g: np.ndarray, n0: int) -> None:
        """spec: (..., N/2+1) complex; g: (..., n) baseband (n <= M) over the frame starting at sample n0."""
        n = g.shape[-1]
        buf = np.zeros(g.shape[:-1] + (self.m,), np.complex64)
        buf[..., :n] = g * (self.ramp[:n] * self.frame_phase(n0))
        z = sfft.fft(buf, axis=-1)
        spec[..., self.dst] += self.scale * z[..., self.src]


def _window(x: np.ndarray, block: int, cross: int) -> np.ndarray:
    """Partition-of-unity frame window at sample offsets x (frame length block + cross)."""
    up = np.clip((x + 0.5) / cross, 0, 1)
    down = np.clip((block + cross - x - 0.5) / cross, 0, 1)
    return np.sin(0.5 * math.pi * up) ** 2 * np.sin(0.5 * math.pi * down) ** 2


class SceneRenderer:
    """Streaming renderer of one scene: ``render(n) -> (mics (n, n_mics) float32, reference (n,) float32)``.

    scene: a :class:`Scene` (or anything ``load_scene`` accepts); seed: int (default ``scene.seed``); everything
    random in the scene is drawn from it. ``sidecar``/``labels`` describe the recording; ``duration_s`` may be
    ``math.inf``. ``set_tone(on)`` ramps the emission off/on (20 ms raised cosine) starting at the first sample not
    yet rendered internally (at most one block, 0.5 s, after the samples already returned).
    """

    def __init__(self, scene: Scene | str | dict, seed: int | None = None):
        if not isinstance(scene, Scene):
            scene = load_scene(scene)
        self.scene = scene
        self.seed = int(scene.seed if seed is None else seed)
        fs = self.sample_rate = scene.sample_rate
        self.duration_s = float(scene.duration_s)
        w = self.world = resolve_world(scene, np.random.default_rng([self.seed, 1]))
        self.n_mics = w.n_mics
        self.carriers = w.carriers_hz
        self.all_movers: list[Mover] = build_movers(scene.movers, w, self.seed, self.duration_s)
        self.movers = [mv for mv in self.all_movers if mv.type_name not in NON_POINT_TYPES]
        self.hvac = [mv for mv in self.all_movers if isinstance(mv, Hvac)]
        self.keys = [mv for mv in self.all_movers if isinstance(mv, Keys)]
        self.music = Music(scene.music, self.seed, self.duration_s) if scene.music is not None else None
        # geometry of frames
        self.block = int(round(BLOCK_S * fs))
        self.cross = CROSSFADE * fs // 96000 * 2
        self.frame_len = self.block + self.cross
        self.d_slow = fs // 6000
        self.d_fast = fs // 12000
        self.d_audio = fs // 24000
        paths = self.paths = static_paths(w)
        fir_len = int(np.ceil(paths.delay_s.max() * fs)) + 40
        q = self.d_slow
        self.n_fft = q * sfft.next_fast_len(-(-(self.frame_len + fir_len) // q), real=True)
        firs = np.stack([fractional_delay_fir(paths.delay_s[m] * fs, paths.amplitude[m], fir_len)
                         for m in range(self.n_mics)])
        self.h_spec = sfft.rfft(firs, n=self.n_fft, axis=-1).astype(np.complex64)   # (M, K)
        self.n_bins = self.n_fft // 2 + 1
        self._placers: dict[tuple[int, int], _Placer] = {}
        self.g_mic = PRESSURE_AT_1M_PER_FS * w.speaker_gain * w.mic_gain                 # (M,)
        img, beta, order, mirror = image_sources(w.device_position_m, w.size_m, w.reflection, 1, with_mirror=True)
        first = order == 1                                                           # the 6 first-order images
        self._speaker_images, self._image_beta, self._image_mirror = img[first], beta[first], mirror[first]
        self._hvac_setup()
        self._frac = np.arange(COARSE_STEP, dtype=np.float32) / COARSE_STEP
        self._windows: dict[int, np.ndarray] = {}
        # state
        self.preroll = -(-(fir_len + self.frame_len) // self.block) + 1
        self._frame = 0                      # next frame index
        self._acc = np.zeros((self.n_mics + 1, self.n_fft + self.block), np.float32)   # channel-major
        self._out: list[np.ndarray] = []
        self._out_ref: list[np.ndarray] = []
        self._out_len = 0
        self._delivered = 0
        self._frontier = -self.preroll * self.block
        self._env_init = 1.0
        self._env_events: list[tuple[int, float, float]] = []
        self._tone_target = 1.0
        self.sidecar = Sidecar(sample_rate=fs, carrier_hz=[float(f) for f in w.nominal_carriers_hz],  # offset unknown
                               mic_positions_m=np.round(w.mic_offsets_m, 6).tolist(), reference=None,
                               extra=w.sidecar_extra())
        self.labels = self._make_labels()

    # ------------------------------------------------------------------ public
    def set_tone(self, on: bool) -> None:
        """Switch the emitted tone on/off with a 20 ms raised-cosine ramp (no click); music is unaffected."""
        target = 1.0 if on else 0.0
        if target == self._tone_target:
            return
        n0 = max(self._delivered, self._frontier)
        v0 = float(self._envelope(np.array([n0]))[0])
        self._env_events.append((n0, v0, target))
        self._tone_target = target

    @property
    def tone_on(self) -> bool:
        return self._tone_target > 0

    def render(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` samples: mics (n, n_mics) float32 full scale, reference (n,) float32 (the drive)."""
        n = int(n)
        while self._out_len < n:
            self._render_frame()
        mics = np.concatenate(self._out) if len(self._out) > 1 else self._out[0]
        ref = np.concatenate(self._out_ref) if len(self._out_ref) > 1 else self._out_ref[0]
        self._out, self._out_ref = [mics[n:]], [ref[n:]]
        self._out_len -= n
        self._delivered += n
        return mics[:n], ref[:n]

    # ------------------------------------------------------------------ internals
    def _placer(self, decim: int, ci: int) -> _Placer:
        key = (decim, ci)
        if key not in self._placers:
            self._placers[key] = _Placer(self.n_fft, decim, float(self.carriers[ci]), self.sample_rate)
        return self._placers[key]

    def _envelope(self, n: np.ndarray) -> np.ndarray:
        """Tone envelope (0..1) at absolute sample positions n."""
        out = np.full(n.shape, self._env_init, float)
        ramp = TONE_RAMP_S * self.sample_rate
        for n0, v0, v1 in self._env_events:
            m = n >= n0
            u = np.clip((n[m] - n0) / ramp, 0, 1)
            out[m] = v0 + (v1 - v0) * np.sin(0.5 * math.pi * u) ** 2
        return out

    def _prune_envelope(self, a: int) -> None:
        ramp = TONE_RAMP_S * self.sample_rate
        while self._env_events and self._env_events[0][0] + ramp <= a and (
                len(self._env_events) == 1 or self._env_events[1][0] <= a):
            self._env_init = self._env_events.pop(0)[2]

    def _grid(self, a: int, decim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample offsets, absolute times (s) and window of a frame starting at a, every ``decim`` samples."""
        x = np.arange(0, self.frame_len, decim)
        if decim not in self._windows:
            self._windows[decim] = _window(x, self.block, self.cross)
        return x, (a + x) / self.sample_rate, self._windows[decim]

    def _render_frame(self) -> None:
        k = self._frame
        self._frame += 1
        a = (k - self.preroll) * self.block
        self._prune_envelope(a)
        self._frontier = a + self.frame_len
        w = self.world
        amp = w.emission_amplitude
        spec = np.zeros((self.n_mics + 1, self.n_bins), np.complex64)   # mics..., reference
        emit = np.zeros(self.n_bins, np.complex64)
        ref = spec[self.n_mics]
        # carrier part of the emission (and the reference tone)
        x, t, win = self._grid(a, self.d_slow)
        env = amp * self._envelope(a + x)
        music_on = self.music is not None and self.music.active(t[0], t[-1])
        m_lf = self.music.low(t) if music_on else None
        for ci, f0 in enumerate(self.carriers):
            pl = self._placer(self.d_slow, ci)
            base = env * win
            pl.add(ref, base, a)
            if music_on:
                base = base * self.music.carrier_factor(m_lf, env, f0, w.c_m_s)
            pl.add(emit, base, a)
        # audio part (music)
        if music_on:
            xa, ta, wa = self._grid(a, self.d_audio)
            m, lf = self.music.mix(ta)
            env_a = amp * self._envelope(a + xa)
            self._add_audio(emit, self.music.speaker_audio(m, lf, env_a) * wa)
            self._add_audio(ref, m * wa)
        spec[: self.n_mics] = emit[None, :] * self.h_spec
        # movers (and HVAC wander on the static paths, at the slow rate)
        env_slow = env
        for fast in (False, True):
            group = [mv for mv in self.movers if mv.fast == fast]
            if not group and (fast or not self.hvac):
                continue
            decim = self.d_fast if fast else self.d_slow
            xg, tg, wg = self._grid(a, decim)
            envg = env_slow if decim == self.d_slow else amp * self._envelope(a + xg)
            bb = self._mover_baseband(group, tg)                        # (C, M, T)
            bb *= self.g_mic[None, :, None]
            if not fast and self.hvac:
                bb += self._hvac_baseband(tg)
            bb *= (envg * wg)[None, None, :]
            for ci in range(len(self.carriers)):
                self._placer(decim, ci).add(spec[: self.n_mics], bb[ci], a)
        y = sfft.irfft(spec, n=self.n_fft, axis=-1)                         # (M+1, N) float32
        acc = self._acc
        acc[:, : self.n_fft] += y
        done = acc[:, : self.block].copy()
        acc[:, : -self.block] = acc[:, self.block:]
        acc[:, -self.block:] = 0
        if a + self.block > 0:
            self._finish_block(done, a)

    def _add_audio(self, spec: np.ndarray, x: np.ndarray) -> None:
        d = self.d_audio
        m = self.n_fft // d
        buf = np.zeros(m, np.float32)
        buf[: len(x)] = x
        z = sfft.rfft(buf)
        n = m // 2
        spec[:n] += d * z[:n]

    def _mover_baseband(self, movers: list[Mover], t: np.ndarray) -> np.ndarray:
        """Sum of mover echoes as complex baseband per carrier and mic: (C, M, T), before emission and mic gain.

        Echo of point p at mic m: 10^(TS/20) gain_p(t) / (r1 r2) 10^(-alpha L/20) e^{-j 2 pi f0 (L/c + latency +
        delay_m)}, L = r1 + r2 (r1 speaker->point, r2 point->mic). It is factorised exactly as
        g_p(t) W_mp(t): g_p = 10^(TS/20) gain_p / r1^2 10^(-alpha 2 r1/20) e^{-j 2 pi f0 2 r1/c} on the full grid
        (fast: Doppler, blade flashes) and W_mp = (r1/r2) 10^(-alpha (r2-r1)/20) e^{-j 2 pi f0 ((r2-r1)/c + latency
        + delay_m)}, which only changes as the point's direction seen from the device turns (tens of Hz), on a 4x
        coarser grid, linearly interpolated. The sum over points is a batched complex matrix product.
        The phase of 2 r1 is float64 reduced to whole cycles; everything else float32.
        """
        w = self.world
        n_t = len(t)
        step = COARSE_STEP
        n_c = -(-n_t // step) + 1
        dt = t[1] - t[0] if n_t > 1 else 1.0
        t_c = t[0] + dt * step * np.arange(n_c)
        out = np.zeros((len(self.carriers), self.n_mics, n_t), complex)
        spk, offs = w.device_position_m, w.mic_offsets_m
        off_sq = np.einsum("mk,mk->m", offs, offs)[:, None, None]
        beam_on = w.speaker_radius_m > 0
        for mv in movers:
            r1, gain, _, r_img = mv.geometry(t, spk, offs, False, self._speaker_images)   # (P, T), (W, B, T)
            keep = np.any(gain > 0, axis=1)
            if not keep.any():
                continue
            if beam_on:  # d . axis rides along as one more "mic offset"
                r1_c, _, dots, _ = mv.geometry(t_c, spk, np.vstack([offs, w.speaker_axis]), True)
                point_dir = dots[-1] / np.where(r1_c > 0, r1_c, 1.0)           # (P, Tc) cos off the beam axis
                img_dir = None
                dots = dots[:-1]
                if r_img is not None:  # rays to the bounce points' images leave the speaker along M_w (p - s_w)
                    pb = mv.positions(t_c)[list(mv.bounce_points)]                                  # (B, Tc, 3)
                    img_dir = (pb[None] - self._speaker_images[:, None, None, :]) * self._image_mirror[:, None, None]
            else:
                r1_c, _, dots, _ = mv.geometry(t_c, spk, offs, True)           # (P, Tc), (M, P, Tc)
            bounce = np.zeros(len(keep), bool)
            bounce[list(mv.bounce_points)] = True
            if not keep.all():
                r1, gain, r1_c, dots = r1[keep], gain[keep], r1_c[keep], dots[:, keep]
                if r_img is not None:
                    r_img = r_img[:, keep[list(mv.bounce_points)]]
                    if beam_on:
                        img_dir = img_dir[:, keep[list(mv.bounce_points)]]
                if beam_on:
                    point_dir = point_dir[keep]
                bounce = bounce[keep]
            # per mic r2 - r1 = q / (r1 + r2), q = |o|^2 - 2 d.o: no cancellation
            q = (off_sq - 2.0 * dots).astype(np.float32)      # small (|q| <= 2 |d| |o|): float32 is exact enough
            r1_c32 = r1_c.astype(np.float32)
            delta_c = q / (r1_c32 + np.sqrt(np.maximum(r1_c32 * r1_c32 + q, np.float32(1e-12))))
            mag = (gain / (r1 * r1)).astype(np.float32)
            r1_32 = r1.astype(np.float32)
            pad = np.zeros((mag.shape[0], (n_c - 1) * step), np.complex64)
            delta_t = np.ascontiguousarray(delta_c.transpose(2, 0, 1))                # (Tc, M, P)
            r1_t = r1_c.T[:, None, :].astype(np.float32)
            ratio = r1_t / (r1_t + delta_t)                                       # r1 / r2
            for ci, f0 in enumerate(self.carriers):
                kappa = w.alpha_db_per_m[ci] * math.log(10) / 20
                k_c = f0 / w.c_m_s
                cyc = 2.0 * k_c * r1
                cyc -= np.rint(cyc)
                ph = cyc.astype(np.float32) * np.float32(-2 * math.pi)
                amp = mag * np.exp(r1_32 * np.float32(-2 * kappa))
                beams = None
                if beam_on:  # the speaker's beam towards each point (and its wall images), coarse grid -> full
                    beam_pt = _coarse_to_full(physics.piston_directivity(point_dir, w.speaker_ka(f0)), n_t)  # (P, T)
                    amp *= beam_pt.astype(np.float32)
                    if img_dir is not None:
                        beams = (beam_pt[bounce], _coarse_to_full(w.speaker_gain_towards(img_dir, f0), n_t))
                re_im = pad.view(np.float32).reshape(pad.shape[0], -1, 2)
                np.multiply(amp, np.cos(ph), out=re_im[:, :n_t, 0])
                np.multiply(amp, np.sin(ph), out=re_im[:, :n_t, 1])
                if r_img is not None and bounce.any():
                    pad[bounce, :n_t] += self._bounces(r1[bounce], r_img, gain[bounce], k_c, kappa, beams)
                lag = (f0 * (w.latency_s + w.mic_delay_s)).astype(np.float32)        # cycles (M,)
                wph = (delta_t * np.float32(k_c) + lag[None, :, None]) * np.float32(-2 * math.pi)
                wmag = ratio * np.exp(delta_t * np.float32(-kappa))
                wc = np.empty(wph.shape, np.complex64)                                    # (Tc, M, P)
                wv = wc.view(np.float32).reshape(wph.shape + (2,))
                np.multiply(wmag, np.cos(wph), out=wv[..., 0])
                np.multiply(wmag, np.sin(wph), out=wv[..., 1])
                g = np.ascontiguousarray(pad.reshape(pad.shape[0], n_c - 1, step).transpose(1, 0, 2))  # (Tc-1, P, R)
                acc = np.matmul(wc[:-1], g)
                acc += np.matmul(wc[1:] - wc[:-1], g) * self._frac                        # (Tc-1, M, R)
                out[ci] += acc.transpose(1, 0, 2).reshape(self.n_mics, -1)[:, :n_t]
        return out

    def _bounces(self, r1: np.ndarray, r_img: np.ndarray, gain: np.ndarray, k_c: float, kappa: float,
                 beams: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """First-order wall multipath of reflector points (B, T), in the same form as the direct echo's fast part
        (so the per-mic factor W applies): speaker->wall->point->mic and speaker->point->wall->mic (nearly the same
        length with the mics 3-5 cm from the speaker: counted as one path, of amplitude beta_w (b' + b) / (r1 r1'))
        and speaker->wall->point->wall->mic with beta_w^2 b' / r1'^2, where r1' is the range from the speaker's image
        in wall w, b the loudspeaker's beam towards the point and b' towards the point's image in wall w (``beams``
        = (b (B, T), b' (W, B, T)); None: omnidirectional, b = b' = 1). r_img: (W, B, T)."""
        beta = self._image_beta[:, None, None]
        re = np.zeros(r1.shape, np.float32)
        im = np.zeros(r1.shape, np.float32)
        if beams is None:
            paths = ((r1[None] + r_img, 2 * beta / (r1[None] * r_img)), (2 * r_img, beta ** 2 / r_img ** 2))
        else:
            b, b_img = beams
            paths = ((r1[None] + r_img, beta * (b_img + b[None]) / (r1[None] * r_img)),
                     (2 * r_img, beta ** 2 * b_img / r_img ** 2))
        for length, amp in paths:
            cyc = k_c * length
            cyc -= np.rint(cyc)
            ph = cyc.astype(np.float32) * np.float32(-2 * math.pi)
            a = (amp * np.exp(-kappa * length) * gain[None]).astype(np.float32)
            re += np.einsum("wbt,wbt->bt", a, np.cos(ph))
            im += np.einsum("wbt,wbt->bt", a, np.sin(ph))
        return re + 1j * im

    def _hvac_setup(self) -> None:
        """Pick each HVAC source's strongest static paths (not the direct path) and their carrier phasors."""
        self._hvac_paths = []
        p = self.paths
        for hv in self.hvac:
            cand = np.flatnonzero(p.kind != 0)
            sel = cand[np.argsort(-p.amplitude[0, cand])[: hv.n_paths]]
            coef = np.stack([p.amplitude[:, sel] * np.exp(-2j * math.pi * f0 * p.delay_s[:, sel])
                             for f0 in self.carriers])                                      # (C, M, P)
            self._hvac_paths.append((hv, p.length_m[0, sel], coef))

    def _hvac_baseband(self, t: np.ndarray) -> np.ndarray:
        """sum_p g_p e^{-j 2 pi f0 tau_p} (e^{j phi_p(t)} - 1): (C, M, T); phases at a 1/8 control rate."""
        out = np.zeros((len(self.carriers), self.n_mics, len(t)), complex)
        tc = t[::8]
        if tc[-1] < t[-1]:
            tc = np.append(tc, t[-1])
        for hv, length, coef in self._hvac_paths:
            ph = hv.phases(tc, length)                                                      # (P, Tc)
            if not ph.any():
                continue
            z = np.einsum("cmp,pt->cmt", coef, np.exp(1j * ph) - 1.0)
            out += _interp_c(t, tc, z)
        return out

    def _finish_block(self, block: np.ndarray, a: int) -> None:
        j = a // self.block
        rng = np.random.default_rng([self.seed, 3, j])
        mics = block[: self.n_mics]                                      # (M, B) channel-major, contiguous
        noise = rng.standard_normal((self.n_mics, self.block), dtype=np.float32)
        noise *= self.world.self_noise_rms.astype(np.float32)[:, None]
        mics += noise
        for k in self.keys:
            k.add_to(mics, a, self.sample_rate, self.world.mic_gain)
        bits = self.world.capture_bits
        if bits:
            q = float(2 ** (bits - 1))
            np.clip(mics, -1.0, 1.0 - 1.0 / q, out=mics)
            mics *= np.float32(q)
            np.rint(mics, out=mics)
            mics *= np.float32(1.0 / q)
        else:
            np.clip(mics, -1.0, 1.0, out=mics)
        ref = block[self.n_mics]
        start = max(0, -a)
        self._out.append(np.ascontiguousarray(mics[:, start:].T))
        self._out_ref.append(ref[start:].copy())
        self._out_len += self.block - start

    def _make_labels(self) -> Labels:
        dur = self.duration_s
        intervals = []
        for mv in self.all_movers:
            intervals.extend(mv.labels())
        if self.music is not None:
            t0, t1 = max(0.0, self.music.start_s), min(self.music.end_s, dur)
            if t1 > t0 and math.isfinite(t1):
                intervals.append(LabelInterval(t0, t1, "music"))
        for iv in intervals:
            iv.start_s = max(0.0, iv.start_s)
        intervals = [iv for iv in intervals if iv.end_s > iv.start_s]
        intervals.sort(key=lambda iv: (iv.start_s, iv.kind))
        return Labels(duration_s=dur, intervals=intervals,
                      extra={"simulator": "uspd", "seed": self.seed, "scene": self.resolved_spec()})

    def resolved_spec(self) -> dict:
        """The scene spec with every seeded choice filled in (room, device, movers)."""
        w = self.world
        spec = self.scene.to_dict()
        spec["seed"] = self.seed
        r = lambda a: np.asarray(a, float).tolist()  # noqa: E731  (full precision: re-rendering is exact)
        spec["room"].update(size_m=r(w.size_m), reflection=r(w.reflection), device_position_m=r(w.device_position_m),
                            scatterers=r(w.scatterers), door_m=r(w.door_m))
        spec["device"].update(mic_positions_m=r(w.mic_offsets_m), **w.spread)
        spec["movers"] = [_strip_arrays({"type": s.type, **mv.p}) for s, mv in zip(self.scene.movers,
                                                                                  self.all_movers)]
        return spec


def _coarse_to_full(x_c: np.ndarray, n_t: int) -> np.ndarray:
    """(..., Tc) values on the renderer's coarse grid (every COARSE_STEP-th sample) -> (..., n_t), linearly."""
    frac = np.arange(COARSE_STEP) / COARSE_STEP
    full = x_c[..., :-1, None] + (x_c[..., 1:, None] - x_c[..., :-1, None]) * frac
    return full.reshape(x_c.shape[:-1] + ((x_c.shape[-1] - 1) * COARSE_STEP,))[..., :n_t]


def _interp_c(t: np.ndarray, tc: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Linear interpolation of complex (..., Tc) samples at tc onto t: (..., T)."""
    flat = z.reshape(-1, len(tc))
    out = np.empty((flat.shape[0], len(t)), complex)
    for i, row in enumerate(flat):
        out[i] = np.interp(t, tc, row.real) + 1j * np.interp(t, tc, row.imag)
    return out.reshape(z.shape[:-1] + (len(t),))


def _strip_arrays(d: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def render_to_file(scene: Scene | str | dict, seed: int | None, wav_path: str | os.PathLike, progress: bool = True,
                   sample_format: str = "int16", duration_s: float | None = None) -> Path:
    """Render ``scene`` to ``wav_path`` (+ sidecar, + NAME.ref.wav when the scene's ``reference`` is true, +
    labels), streaming 1 s blocks to a RecordingWriter with a tqdm progress bar. Returns the WAV path."""
    from tqdm import tqdm

    from uspd.errors import UspdError
    from uspd.recording import RecordingWriter, write_labels

    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    if duration_s is not None:
        scene = load_scene(scene, duration_s=duration_s)
    if not math.isfinite(scene.duration_s):
        raise UspdError(f"scene {scene.name or ''}: duration_s is infinite; give a duration to write a file")
    rnd = SceneRenderer(scene, seed)
    fs = rnd.sample_rate
    total = int(round(rnd.duration_s * fs))
    path = Path(wav_path)
    with RecordingWriter(path, rnd.sidecar, sample_format=sample_format, with_reference=scene.reference) as wr:
        with tqdm(total=total / fs, unit="s", disable=not progress, desc=path.name,
                  bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]") as bar:
            done = 0
            while done < total:
                n = min(fs, total - done)
                mics, ref = rnd.render(n)
                wr.write(mics, ref if scene.reference else None)
                done += n
                bar.update(n / fs)
    write_labels(path, rnd.labels)
    return path
