"""The classic detector: Doppler-band energy against a per-bin noise floor that adapts while nothing moves.

Per hop (frames from :class:`uspd.features.frontend.DopplerFrontEnd`):

1. Doppler power per bin in dB re carrier: the front end's echo power (the part not common to all mics, so the
   loudspeaker's own distortion products, e.g. with music, are left out; one mic: its power), averaged over
   ``smooth_bins`` neighbouring bins and in time (exponential average, ``avg_s``). A second feature per bin is its
   asymmetry: the level at +Δf minus the level at -Δf (what the loudspeaker emits is symmetric around the carrier,
   a moving reflector is not). With two mics, an echo arriving in phase at both is missed while that lasts; a
   moving reflector's phase difference between mics drifts, so this is brief.
2. Per bin and feature, a running mean and spread form the noise floor. They adapt with ``floor_tau_s`` once
   nothing moved for ``quiet_hold_s`` (score below ``quiet_score``); otherwise only the mean adapts, with the much
   slower ``floor_tau_motion_s``, so a walking person does not become "noise" while a fan switched on for good is
   eventually learnt.
3. z-scores per bin, mixed (``asym_weight``); the motion statistic is the largest over the motion velocities
   ``v_min_m_s..v_max_m_s`` (velocity v = Δf·c/(2·f0), so 20 kHz and 40 kHz carriers use the same thresholds),
   minus a penalty when the guard band above ``guard_min_m_s`` (only fan blades move that fast) lights up at the
   same time (blade flashes and impulses such as keys are broadband): z_eff = z_motion - guard_weight *
   max(0, z_guard - 4). ``score`` = logistic((z_eff - z_mid) / z_slope), averaged over carriers.
4. ``major``: the Doppler extent, the speed under which 90 % of the excess power lies (walking: torso ~1 m/s and
   swinging limbs faster; a seated reach or a page turn: slow and narrow), smoothed over ``major_avg_s``, through a
   logistic centred at ``major_v_m_s``.

Debounce, hangover and the context-dependent thresholds are the presence tracker's job (uspd.presence).
"""
from __future__ import annotations

import math

import numpy as np

from uspd.detector.base import ClassicConfig, Scores
from uspd.errors import UspdError

#: Frames in the first this-many seconds after a reset are ignored (the front end's zero-padded windows).
SETTLE_S = 0.2
#: Bins with a z-score above this contribute to the Doppler extent used for ``major``.
Z_SIGNIFICANT = 3.0
#: Largest guard-band z-score that is still considered normal (no penalty below it).
GUARD_Z0 = 4.0
#: Floor updates use deviations clipped to this many spreads (one loud hop cannot move the floor much).
CLIP_Z = 3.0


class ClassicDetector:
    """Streaming classic detector (see the module doc). ``process(frames) -> Scores``; ``reset()``.

    config: :class:`ClassicConfig` (the ``[detector.classic]`` table). carriers_hz: used when the frames do not
    carry their carrier frequencies.
    """

    def __init__(self, config: ClassicConfig | None = None, carriers_hz=None):
        self.config = config if config is not None else ClassicConfig()
        self.config.validate()
        self.carriers_hz = None if carriers_hz is None else np.atleast_1d(np.asarray(carriers_hz, np.float64))
        self._geometry_key: tuple | None = None
        self._hop_s: float | None = None   # stream geometry: kept across reset()
        self._t_last: float | None = None
        self.reset()

    @property
    def hop_s(self) -> float | None:
        """The stream's hop (s), inferred from the first frames processed; None before any."""
        return self._hop_s

    def reset(self) -> None:
        """Forget the noise floor and all averages (a new warm-up follows)."""
        self._t_first: float | None = None
        self._avg: np.ndarray | None = None
        self._mu: np.ndarray | None = None
        self._var: np.ndarray | None = None
        self._n_warm = 0
        self._last_active_s = -np.inf
        self._major_v = 0.0

    # ------------------------------------------------------------------------------------------------------------
    def _geometry(self, freqs_hz: np.ndarray, carriers_hz: np.ndarray, hop_s: float) -> None:
        """Velocity masks per carrier: motion bins (K, B), guard bins (K, B), |v| (K, B) m/s."""
        key = (tuple(np.round(freqs_hz, 6)), tuple(carriers_hz), round(hop_s, 9))
        if key == self._geometry_key:
            return
        cfg = self.config
        self._geometry_key = key
        self._speed = np.abs(freqs_hz[None, :]) * cfg.sound_speed_m_s / (2.0 * carriers_hz[:, None])
        df = float(np.median(np.diff(freqs_hz))) if len(freqs_hz) > 1 else 1.0
        outside_notch = np.abs(freqs_hz)[None, :] > 0.5 * df
        self._motion = (self._speed >= cfg.v_min_m_s) & (self._speed <= cfg.v_max_m_s) & outside_notch
        self._guard = self._speed >= cfg.guard_min_m_s
        if not self._motion.any(axis=1).all():
            raise UspdError("classic detector: the front end's Doppler bins leave no motion velocities between "
                            f"{cfg.v_min_m_s} and {cfg.v_max_m_s} m/s (band too narrow or bins too coarse)")
        self._has_guard = bool(self._guard.any(axis=1).all())
        self._mirror = np.array([int(np.argmin(np.abs(freqs_hz + f))) for f in freqs_hz])  # bin of -Δf
        self._avg_a = float(np.exp(-hop_s / cfg.avg_s))
        self._order = np.argsort(self._speed, axis=1, kind="stable")  # bins by increasing speed, per carrier
        self._major_a = float(np.exp(-hop_s / cfg.major_avg_s))

    def _carriers(self, frames) -> np.ndarray:
        c = getattr(frames, "carriers_hz", None)
        if c is None:
            c = self.carriers_hz
        if c is None:
            raise UspdError("classic detector: carrier frequencies unknown (frames without carriers_hz; pass "
                            "carriers_hz=)")
        return np.atleast_1d(np.asarray(c, dtype=np.float64))

    def _features(self, frames, spectra_db: np.ndarray) -> np.ndarray:
        """-> (F, K, B) dB: the echo power (``frames.echo_db``: the Doppler power not common to all mics, so what
        the loudspeaker itself emits around the carrier is left out) or the mean over mics of ``spectra_db``, then
        a moving average over ``smooth_bins`` bins."""
        echo = getattr(frames, "echo_db", None)
        if self.config.use_echo and echo is not None and spectra_db.shape[2] > 1:
            x = np.asarray(echo, dtype=np.float64)
        else:
            x = spectra_db.mean(axis=2)
        w = self.config.smooth_bins
        if w > 1:
            pad = np.pad(x, [(0, 0), (0, 0), (w // 2, w - 1 - w // 2)], mode="edge")
            c = np.cumsum(np.concatenate([np.zeros(x.shape[:2] + (1,)), pad], axis=2), axis=2)
            x = (c[..., w:] - c[..., :-w]) / w
        return x

    def process(self, frames) -> Scores:
        """frames: Frames (t_s (F,), spectra_db (F, K, M, B), freqs_hz, carriers_hz) -> Scores (F,)."""
        t_s = np.asarray(frames.t_s, dtype=np.float64)
        n = len(t_s)
        if n == 0:
            return Scores(score=np.zeros(0), major=np.zeros(0))
        spectra = np.asarray(frames.spectra_db, dtype=np.float64)
        carriers = self._carriers(frames)
        if spectra.ndim != 4 or spectra.shape[1] != len(carriers):
            raise UspdError(f"classic detector: spectra_db must be (F, {len(carriers)}, n_mics, n_bins), "
                            f"got {spectra.shape}")
        if self._t_first is None:
            self._t_first = float(t_s[0])
        if self._hop_s is None:  # inferred once: from the first two frames, or a stream that starts at t = 0
            self._hop_s = float(t_s[1] - t_s[0]) if n > 1 else float(t_s[0] - (self._t_last or 0.0))
        self._t_last = float(t_s[-1])
        self._geometry(np.asarray(frames.freqs_hz, dtype=np.float64), carriers, self._hop_s)
        feats = self._features(frames, spectra)
        score = np.zeros(n)
        major = np.zeros(n)
        for i in range(n):
            score[i], major[i] = self._step(float(t_s[i]) - self._t_first, feats[i])
        return Scores(score=score, major=major)

    # ------------------------------------------------------------------------------------------------------------
    def _start(self, x_db: np.ndarray) -> None:
        """First hop after the settle time: averages and floor start here; work buffers."""
        cfg = self.config
        self._avg = x_db.copy()
        self._feats = self._stack(x_db)
        self._mu = self._feats.copy()
        self._var = np.full_like(self._feats, 4.0 * cfg.min_spread_db ** 2)
        self._set_spread()
        self._d = np.empty_like(self._feats)
        self._n_warm = 1
        self._mix = np.array([1.0 - cfg.asym_weight, cfg.asym_weight])
        self._motion_idx = [np.nonzero(self._motion[k])[0] for k in range(len(x_db))]
        self._guard_idx = [np.nonzero(self._guard[k])[0] for k in range(len(x_db))] if self._has_guard else None

    def _set_spread(self) -> None:
        self._sd = np.sqrt(np.maximum(self._var, self.config.min_spread_db ** 2))
        self._inv_sd = 1.0 / self._sd

    def _step(self, age_s: float, x_db: np.ndarray) -> tuple[float, float]:
        """One hop: x_db (K, B) bin-smoothed dB power -> (score, major); updates the state."""
        cfg = self.config
        if age_s < SETTLE_S:
            return 0.0, 0.0
        if self._avg is None:
            self._start(x_db)
            return 0.0, 0.0
        a = self._avg_a
        avg = self._avg
        avg *= a
        avg += (1.0 - a) * x_db
        feats, d = self._feats, self._d
        feats[0] = avg
        np.subtract(avg, avg[:, self._mirror], out=feats[1])  # level excess over the mirror bin at -Δf
        np.subtract(feats, self._mu, out=d)
        zz = d * self._inv_sd
        z_c = (self._mix @ zz.reshape(2, -1)).reshape(avg.shape)  # (K, B) mixed z-score
        warm = age_s < cfg.warmup_s
        score = 0.0
        if not warm:
            total = 0.0
            for k, idx in enumerate(self._motion_idx):
                z_eff = float(z_c[k, idx].max())
                if self._guard_idx is not None:
                    z_eff -= cfg.guard_weight * max(float(zz[0, k, self._guard_idx[k]].max()) - GUARD_Z0, 0.0)
                total += 0.5 * (1.0 + math.tanh(0.5 * (z_eff - cfg.z_mid) / cfg.z_slope))
            score = total / len(self._motion_idx)
        # Doppler extent of the excess power (for major vs minor): speed under which 90 % of it lies
        v_ext = 0.0
        if not warm and score >= cfg.quiet_score:  # noise-only hops have no extent
            sig = self._motion & (zz[0] > Z_SIGNIFICANT)
            if sig.any():
                excess = np.where(sig, 10.0 ** (0.1 * avg) - 10.0 ** (0.1 * self._mu[0]), 0.0)
                exts = []
                for k in range(excess.shape[0]):
                    cum = np.cumsum(excess[k, self._order[k]])
                    if cum[-1] > 0:
                        exts.append(self._speed[k, self._order[k]][np.searchsorted(cum, 0.9 * cum[-1])])
                v_ext = float(np.mean(exts)) if exts else 0.0
        self._major_v = self._major_a * self._major_v + (1.0 - self._major_a) * v_ext
        major = 0.0 if warm else 0.5 * (1.0 + math.tanh(0.5 * (self._major_v - cfg.major_v_m_s)
                                                        / cfg.major_slope_m_s))
        # noise floor: a running mean while warming up; then floor_tau_s once nothing moved for quiet_hold_s,
        # else floor_tau_motion_s. Deviations are clipped (robust to single loud hops).
        if score >= cfg.quiet_score:
            self._last_active_s = age_s
        if warm:
            self._n_warm += 1
            alpha = 1.0 / self._n_warm
        elif age_s - self._last_active_s > cfg.quiet_hold_s:  # quiet: track mean and spread
            alpha = self._hop_s / cfg.floor_tau_s
            lim = CLIP_Z * self._sd
            np.clip(d, -lim, lim, out=d)
        else:  # something moves: only the mean, slowly (a permanent change is learnt; a person is not)
            d *= self._hop_s / cfg.floor_tau_motion_s
            self._mu += d
            return score, major
        self._var += alpha * (d * d - self._var)
        d *= alpha
        self._mu += d
        self._set_spread()
        return score, major

    def _stack(self, a_db: np.ndarray) -> np.ndarray:
        """(K, B) dB -> (2, K, B): the level, and its excess over the mirror bin at -Δf (dB)."""
        return np.stack([a_db, a_db - a_db[:, self._mirror]])


__all__ = ["ClassicDetector"]
