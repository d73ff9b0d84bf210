"""The neural detector: a tiny causal int8 ONNX network run hop by hop with carried state.

Features (shared with training, numpy only): the front end's per-mic Doppler spectra are pooled into a fixed grid of
VELOCITY bands, v = Δf·c / (2·f0), so a 20 kHz and a 40 kHz carrier look alike and the model does not depend on the
front end's bin count. Bands are geometric in |v| (fine near zero for a page edge, coarse for walking), the same
number on the receding (negative) and approaching side. Every carrier x mic pair is one input channel; the network
pools over channels, so any mic count works.

Each band also gets its rise above a slow per-channel background (:class:`FeatureStream`), like the adaptive noise
floor of a classic detector, but learned on.

Models exported with an ``e`` input also get the same features of the front end's echo spectrum
(``Frames.echo_db``: the Doppler power NOT common to all mics, so the loudspeaker's own music distortion, which
reaches every mic alike, is removed while echoes of moving things stay), averaged over carriers: (n_inputs,) per hop
(:class:`EchoStream`). With ``FeatureSpec.echo_floor`` e also holds, per band, the z-score against the classic
detector's motion-gated adaptive floor (:class:`FloorStream`) run on those echo bands.

Inference = the live path: the shipped int8 ONNX graph takes ONE hop (x (C, n_inputs) dB, h (1, H)) and returns
(probs (2,) [score, major], h_new). :class:`NeuralDetector` calls it once per hop, so any chunking of the frames
gives identical scores. Only numpy and onnxruntime are needed; the model and its JSON manifest are package data.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from uspd.errors import UspdError

try:  # the Detector protocol's result type (detector/base.py)
    from uspd.detector.base import Scores
except ImportError:  # pragma: no cover - base.py not there yet
    @dataclass
    class Scores:  # type: ignore[no-redef]
        score: np.ndarray
        major: np.ndarray

#: File names of the shipped model inside the ``uspd.models`` package.
SHIPPED_MODEL = "nn_detector.onnx"
#: Speed of sound used to map Doppler Hz to m/s (20 °C; the 2 % spread over room temperatures is immaterial here).
SOUND_SPEED_M_S = 343.2
#: Value (dB re carrier) given to a band the front end's Doppler range does not cover.
FLOOR_DB = -140.0
#: Spread features (``FeatureSpec.spread``): starting variance (dB^2), smallest variance, deviation clip (spreads)
#: and the z-score's range.
SPREAD_START_DB2 = 9.0
SPREAD_MIN_DB2 = 0.25
SPREAD_CLIP_Z = 3.0
SPREAD_MAX_Z = 10.0
#: Echo floor features (``FeatureSpec.echo_floor``, :class:`FloorStream`): the classic detector's floor with its
#: default ``[detector.classic]`` values, fixed here so that a later change of those defaults cannot change a model's
#: inputs. Power average (s); floor time constants while quiet and while something moves (s); "quiet" once no
#: motion band reached FLOOR_GATE_Z for FLOOR_HOLD_S (the classic's quiet_score 0.3 at z_mid 11, z_slope 3:
#: 11 + 3 ln(0.3 / 0.7)); warm-up (running mean, z = 0); smallest spread; asymmetry weight; motion velocities (m/s);
#: deviation clip (spreads) of quiet updates; output range of z.
FLOOR_AVG_S = 0.2
FLOOR_TAU_S = 30.0
FLOOR_TAU_MOTION_S = 120.0
FLOOR_GATE_Z = 11.0 + 3.0 * math.log(0.3 / 0.7)
FLOOR_HOLD_S = 3.0
FLOOR_WARMUP_S = 1.5
FLOOR_MIN_SPREAD_DB = 1.0
FLOOR_ASYM_WEIGHT = 0.85
FLOOR_MOTION_M_S = (0.06, 3.0)
FLOOR_CLIP_Z = 3.0
FLOOR_MAX_Z = 30.0


@dataclass(frozen=True)
class FeatureSpec:
    """Velocity band grid: ``n_per_side`` geometric bands from ``v_min_m_s`` to ``v_max_m_s`` on each side.
    ``background``: also feed each band's rise above a slow per-channel background (rises with time constant
    ``background_up_s``, falls with ``background_down_s``), so the model sees "new" Doppler energy on each mic.
    ``background_warmup``: the background is a running mean until those rates are slower (the first
    ``background_up_s``), so the features change regime then; False keeps the rates fixed from the first hop.
    ``spread``: also feed each band's z-score against its own slow running mean and spread (time constant
    ``spread_tau_s``, deviations clipped to ``SPREAD_CLIP_Z`` spreads before they update them, like the classic
    detector's floor), so a band that always fluctuates (a fan) rises less than a quiet one for the same dB.
    ``echo_floor``: the echo input ``e`` also gets each band's z-score against the classic detector's motion-gated
    floor (:class:`FloorStream`), averaged over carriers.
    ``level``: feed each band's level itself (dB re carrier). False leaves only the rise above the background (and
    z): no gain or direct-path coupling offset, which shifts every band's dB re carrier alike, changes those.
    ``level_shape``: feed the level minus its mean over the channel's bands (the Doppler spectrum's shape, dB)
    instead of the level re carrier: such an offset cancels, the spectrum's shape stays.
    ``level_floor``: feed the level minus the median over the channel's bands of its slow background (the room's
    Doppler floor, mostly the mic's noise, dB) instead of the level re carrier: a device's gain, drive or coupling
    moves echoes and that floor alike and cancels, while an echo's height above the floor (its distance) stays.
    Needs ``background``."""

    n_per_side: int = 16
    v_min_m_s: float = 0.02
    v_max_m_s: float = 4.0
    background: bool = True
    background_up_s: float = 30.0
    background_down_s: float = 1.0
    background_warmup: bool = True
    spread: bool = False
    spread_tau_s: float = 20.0
    echo_floor: bool = False
    level: bool = True
    level_shape: bool = False
    level_floor: bool = False

    def __post_init__(self):
        if self.level_shape and not self.level:
            raise UspdError("neural features: level_shape reshapes the band levels, which level=False leaves out "
                            "(uspd train: --level-shape and --no-level do not combine)")
        if self.level_floor and not (self.level and self.background and not self.level_shape):
            raise UspdError("neural features: level_floor feeds the band levels re the slow background's median, so "
                            "it needs the levels and the background and replaces level_shape (uspd train: "
                            "--level-floor does not combine with --no-level, --no-background or --level-shape)")
        if self.n_inputs == 0:
            raise UspdError("neural features: level, background and spread all off leaves the model no inputs "
                            "(uspd train: drop --no-level or --no-background, or add --spread)")

    @property
    def n_bands(self) -> int:
        return 2 * self.n_per_side

    @property
    def n_inputs(self) -> int:
        """Model inputs per channel."""
        return self.n_bands * (int(self.level) + int(self.background) + int(self.spread))

    def describe_inputs(self) -> str:
        """The blocks of one channel's inputs, in order, in words (for the model's manifest)."""
        level = ("re its mean over the bands (the spectrum's shape)" if self.level_shape
                 else "re the median over the bands of its slow background (the floor)" if self.level_floor
                 else "re carrier")
        blocks = ([f"velocity-band Doppler power {level}"] if self.level else []) \
            + (["its rise above the slow background"] if self.background else []) \
            + (["its z-score against its slow running mean and spread"] if self.spread else [])
        if not self.level:
            blocks[0] = blocks[0].replace("its ", "velocity-band Doppler power's ", 1)
        return ", then ".join(blocks)

    @property
    def n_echo_inputs(self) -> int:
        """Echo inputs per hop (the length of ``e``)."""
        return self.n_inputs + self.n_bands * int(self.echo_floor)

    def edges_m_s(self) -> np.ndarray:
        """Band edges (n_bands, 2) in m/s, ordered from -v_max to +v_max."""
        mag = np.geomspace(self.v_min_m_s, self.v_max_m_s, self.n_per_side + 1)
        pos = np.stack([mag[:-1], mag[1:]], axis=1)
        neg = -pos[::-1, ::-1]
        return np.concatenate([neg, pos], axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "FeatureSpec":
        names = {f.name for f in fields(FeatureSpec)}
        return FeatureSpec(**{k: v for k, v in d.items() if k in names})


@lru_cache(maxsize=64)
def _band_weights(freqs_key: tuple[float, ...], f0_hz: float, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_bands, n_bins) averaging bin power over each band (fractional bin overlap), and a mask of bands
    that no bin covers (n_bands,) bool."""
    freqs = np.asarray(freqs_key, dtype=np.float64)
    d = float(np.median(np.diff(freqs))) if freqs.size > 1 else 1.0
    band_hz = spec.edges_m_s() * 2.0 * f0_hz / SOUND_SPEED_M_S  # (n_bands, 2)
    lo = np.maximum(band_hz[:, :1], freqs[None, :] - d / 2)
    hi = np.minimum(band_hz[:, 1:], freqs[None, :] + d / 2)
    w = np.clip(hi - lo, 0.0, None)
    total = w.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
    return w.astype(np.float64), empty


def band_features(spectra_db: np.ndarray, freqs_hz: np.ndarray, carriers_hz, spec: FeatureSpec = FeatureSpec()
                  ) -> np.ndarray:
    """Doppler spectra -> velocity-band features.

    spectra_db (F, n_carriers, n_mics, n_bins) dB re carrier; freqs_hz (n_bins,); carriers_hz (n_carriers,) Hz.
    Returns (F, n_carriers * n_mics, n_bands) float32 dB (band-mean power), channels ordered carrier-major.
    """
    s = np.asarray(spectra_db, dtype=np.float64)
    if s.ndim != 4:
        raise UspdError(f"neural detector: spectra_db must be (F, n_carriers, n_mics, n_bins), got shape {s.shape}")
    n_f, n_car, n_mic, n_bins = s.shape
    carriers = np.atleast_1d(np.asarray(carriers_hz, dtype=np.float64))
    if carriers.size != n_car:
        raise UspdError(f"neural detector: {carriers.size} carrier frequencies for {n_car} carriers in the frames")
    out = np.empty((n_f, n_car, n_mic, spec.n_bands), dtype=np.float64)
    key = tuple(float(f) for f in np.asarray(freqs_hz, dtype=np.float64))
    if len(key) != n_bins:
        raise UspdError(f"neural detector: {len(key)} Doppler frequencies for {n_bins} bins")
    power = 10.0 ** (s / 10.0)
    for c, f0 in enumerate(carriers):
        w, empty = _band_weights(key, float(f0), spec)
        band = power[:, c] @ w.T  # (F, n_mic, n_bands)
        band_db = 10.0 * np.log10(np.maximum(band, 10.0 ** (FLOOR_DB / 10.0)))
        if empty.any():
            band_db[..., empty] = np.maximum(s[:, c].min(axis=-1, keepdims=True), FLOOR_DB)
        out[:, c] = band_db
    return out.reshape(n_f, n_car * n_mic, spec.n_bands).astype(np.float32)


def echo_band_features(echo_db: np.ndarray, freqs_hz: np.ndarray, carriers_hz, spec: FeatureSpec = FeatureSpec()
                       ) -> np.ndarray:
    """Echo spectra (F, n_carriers, n_bins) dB re carrier -> velocity-band features (F, n_carriers, n_bands) float32."""
    e = np.asarray(echo_db)
    if e.ndim != 3:
        raise UspdError(f"neural detector: echo_db must be (F, n_carriers, n_bins), got shape {e.shape}")
    return band_features(e[:, :, None, :], freqs_hz, carriers_hz, spec)


class FeatureStream:
    """Streaming model inputs from band features: (F, C, B) dB -> (F, C, n_inputs) float32.

    The output is [x (with ``spec.level``; x minus its mean over the B bands with ``spec.level_shape``; x minus the
    median over the B bands of bg with ``spec.level_floor``), x - bg (with ``spec.background``), z (with
    ``spec.spread``)], each (B,) per channel.
    bg (per channel and band, dB) starts at the first hop's x and follows x with the rate max(1/(n+1), hop/tau): a
    running mean over the first hops, then rising with ``background_up_s`` and falling with ``background_down_s``
    (rate hop/tau from the start without ``spec.background_warmup``).
    z = (x - mean) / spread against the band's state before this hop (0 on the first hop), clipped to
    +-``SPREAD_MAX_Z``; mean and variance then follow the deviation clipped to ``SPREAD_CLIP_Z`` spreads with the
    rate hop / ``spread_tau_s`` from the first hop (variance starts at ``SPREAD_START_DB2``).
    State carries across calls (any chunking gives identical output); a change in the channel count restarts it.
    """

    def __init__(self, spec: FeatureSpec, hop_s: float = 0.05):
        self.spec, self.hop_s = spec, hop_s
        self.reset()

    def reset(self) -> None:
        self._bg: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None
        self._n = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        spec = self.spec
        if spec.level and not (spec.level_shape or spec.background or spec.spread):
            return x
        if any(state is not None and state.shape != x.shape[1:] for state in (self._bg, self._mean)):
            self.reset()
        up = self.hop_s / spec.background_up_s
        down = self.hop_s / spec.background_down_s
        warmup = spec.background_warmup
        a = np.float32(self.hop_s / spec.spread_tau_s)
        nb = x.shape[2]
        out = np.empty(x.shape[:2] + (spec.n_inputs // spec.n_bands * nb,), np.float32)
        col = 0
        if spec.level:  # (level_floor: written below, from the background of each hop)
            if not spec.level_floor:
                out[:, :, :nb] = x - x.mean(axis=2, keepdims=True) if spec.level_shape else x
            col = nb
        if spec.background:
            bg, n = self._bg, self._n
            bgs = np.empty_like(x) if spec.level_floor else None   # (F, C, B): bg after each hop
            for i in range(x.shape[0]):
                xi = x[i]
                if bg is None:
                    bg = xi.copy()
                else:
                    first = 1.0 / (n + 1) if warmup else 0.0
                    rate = np.where(xi > bg, max(first, up), max(first, down)).astype(np.float32)
                    bg = bg + rate * (xi - bg)
                n += 1
                out[i, :, col:col + nb] = xi - bg
                if bgs is not None:
                    bgs[i] = bg
            if bgs is not None:  # one median over the bands for the whole chunk
                out[:, :, :nb] = x - np.median(bgs, axis=2, keepdims=True)
            self._bg = bg
            col += nb
        if spec.spread:
            mean, var = self._mean, self._var
            for i in range(x.shape[0]):
                xi = x[i]
                if mean is None:
                    mean, var = xi.copy(), np.full_like(xi, SPREAD_START_DB2)
                    out[i, :, col:col + nb] = 0.0
                    continue
                sd = np.sqrt(var)
                d = xi - mean
                out[i, :, col:col + nb] = np.clip(d / sd, -SPREAD_MAX_Z, SPREAD_MAX_Z)
                d = np.clip(d, -SPREAD_CLIP_Z * sd, SPREAD_CLIP_Z * sd)
                mean = mean + a * d
                var = np.maximum(var + a * (d * d - var), np.float32(SPREAD_MIN_DB2))
            self._mean, self._var = mean, var
        self._n += x.shape[0]
        return out


class FloorStream:
    """The classic detector's adaptive floor (:mod:`uspd.detector.classic`, steps 1-3) on velocity-band features:
    (F, K, B) dB -> (F, K, B) float32 z-scores, one row per carrier.

    Per row: the band power is averaged over ``FLOOR_AVG_S``; its level and its asymmetry (level minus the mirror
    band's at -v) are z-scored against a running mean and spread, mixed with weight ``FLOOR_ASYM_WEIGHT`` on the
    asymmetry and clipped to +-``FLOOR_MAX_Z``. The first ``FLOOR_WARMUP_S`` learn a running mean (z = 0). Then, while
    no motion band (``FLOOR_MOTION_M_S``) of the row reached ``FLOOR_GATE_Z`` for ``FLOOR_HOLD_S``, mean and spread
    follow the clipped deviations with ``FLOOR_TAU_S``; otherwise only the mean moves, with ``FLOOR_TAU_MOTION_S``,
    so a walker is not learnt as noise while a fan left on is, slowly. State carries across calls (any chunking gives
    identical output); a change in the row count restarts it."""

    def __init__(self, spec: FeatureSpec, hop_s: float = 0.05):
        self.hop_s = hop_s
        mag = np.sqrt(np.abs(spec.edges_m_s()).prod(axis=1))  # geometric band centre |v|
        self._motion = (mag >= FLOOR_MOTION_M_S[0]) & (mag <= FLOOR_MOTION_M_S[1])
        self._mirror = np.arange(spec.n_bands)[::-1]  # bands are symmetric around 0 m/s
        self.reset()

    def reset(self) -> None:
        self._avg: np.ndarray | None = None
        self._mu = self._var = None
        self._n = 0
        self._since_active: np.ndarray | None = None

    def _stack(self, avg: np.ndarray) -> np.ndarray:
        return np.stack([avg, avg - avg[:, self._mirror]])

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._avg is not None and self._avg.shape != x.shape[1:]:
            self.reset()
        out = np.zeros(x.shape, np.float32)
        hop = self.hop_s
        a = math.exp(-hop / FLOOR_AVG_S)
        warm_hops = round(FLOOR_WARMUP_S / hop)
        hold_hops = round(FLOOR_HOLD_S / hop)
        quiet_rate, motion_rate = hop / FLOOR_TAU_S, hop / FLOOR_TAU_MOTION_S
        min_var = FLOOR_MIN_SPREAD_DB ** 2
        mix = np.array([1.0 - FLOOR_ASYM_WEIGHT, FLOOR_ASYM_WEIGHT])[:, None, None]
        avg, mu, var, n, since = self._avg, self._mu, self._var, self._n, self._since_active
        for i in range(x.shape[0]):
            if avg is None:
                avg = x[i].copy()
                mu = self._stack(avg)
                var = np.full_like(mu, 4.0 * min_var)
                since = np.full(x.shape[1], hold_hops + 1)
                n = 1
                continue
            avg = a * avg + (1.0 - a) * x[i]
            d = self._stack(avg) - mu
            sd = np.sqrt(np.maximum(var, min_var))
            if n < warm_hops:  # warm-up: running mean and variance
                n += 1
                var = var + (d * d - var) / n
                mu = mu + d / n
                continue
            z = (mix * (d / sd)).sum(axis=0)  # (K, B)
            out[i] = np.clip(z, -FLOOR_MAX_Z, FLOOR_MAX_Z)
            active = z[:, self._motion].max(axis=1) >= FLOOR_GATE_Z
            since = np.where(active, 0, since + 1)
            quiet = (since > hold_hops)[None, :, None]
            dq = np.clip(d, -FLOOR_CLIP_Z * sd, FLOOR_CLIP_Z * sd)
            var = np.where(quiet, var + quiet_rate * (dq * dq - var), var)
            mu = np.where(quiet, mu + quiet_rate * dq, mu + motion_rate * d)
            n += 1
        self._avg, self._mu, self._var, self._n, self._since_active = avg, mu, var, n, since
        return out


class EchoStream:
    """Echo band features (F, n_carriers, n_bands) dB -> model input e (F, spec.n_echo_inputs) float32: each
    carrier's row through a :class:`FeatureStream` and, with ``spec.echo_floor``, a :class:`FloorStream`, then
    averaged over carriers. State carries across calls."""

    def __init__(self, spec: FeatureSpec, hop_s: float = 0.05):
        self.stream = FeatureStream(spec, hop_s)
        self.floor = FloorStream(spec, hop_s) if spec.echo_floor else None

    def reset(self) -> None:
        self.stream.reset()
        if self.floor is not None:
            self.floor.reset()

    def process(self, echo_bands: np.ndarray) -> np.ndarray:
        e = self.stream.process(echo_bands).mean(axis=1, dtype=np.float32)
        if self.floor is None:
            return e
        return np.concatenate([e, self.floor.process(echo_bands).mean(axis=1, dtype=np.float32)], axis=1)


def frames_carriers_hz(frames, fallback) -> np.ndarray:
    """Carrier frequencies of ``frames`` (its ``carriers_hz`` attribute if the front end sets one, else
    ``fallback``); a one-line error if neither is known."""
    c = getattr(frames, "carriers_hz", None)
    if c is None:
        c = fallback
    if c is None:
        raise UspdError("neural detector: carrier frequencies unknown (pass carriers_hz= or use frames that carry them)")
    return np.atleast_1d(np.asarray(c, dtype=np.float64))


def _logits(p, eps: float = 1e-7) -> np.ndarray:
    """logit(p) in float64, p clipped to [eps, 1 - eps]."""
    q = np.clip(np.asarray(p, np.float64), eps, 1.0 - eps)
    return np.log(q / (1.0 - q))


def _sigmoid32(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def shift_logit(p: np.ndarray, offset: float, scale: float = 1.0) -> np.ndarray:
    """sigmoid(scale * logit(p) + offset), float32, p clipped to [1e-7, 1 - 1e-7]."""
    return _sigmoid32(scale * _logits(p) + offset)


def logit_mean(probs: list[np.ndarray]) -> np.ndarray:
    """Probability whose logit is the mean of the logits of ``probs`` (same shapes), float32: how an ensemble of
    models (or distillation teachers) combines; p clipped to [1e-7, 1 - 1e-7]."""
    return _sigmoid32(np.mean(_logits(np.stack([np.asarray(p) for p in probs])), axis=0))


def _logit(x: float) -> float:
    return math.log(x / (1.0 - x))


def calibration_offset(tuned_threshold: float, presence_threshold: float) -> float:
    """Logit offset that maps a model's tuned score threshold onto the ``[presence]`` threshold: a raw score equal to
    ``tuned_threshold`` becomes ``presence_threshold``."""
    for name, v in (("tuned threshold", tuned_threshold), ("presence threshold", presence_threshold)):
        if not 0.0 < v < 1.0:
            raise UspdError(f"calibration: the {name} must be strictly between 0 and 1, got {v}")
    return _logit(presence_threshold) - _logit(tuned_threshold)


def calibration_map(tuned_threshold: float, presence_threshold: float, tuned_sensitive: float | None = None,
                    presence_sensitive: float | None = None) -> tuple[float, float]:
    """(scale, offset) of ``score = sigmoid(scale * logit(raw) + offset)``: a raw ``tuned_threshold`` becomes
    ``presence_threshold`` and, when given, a raw ``tuned_sensitive`` becomes ``presence_sensitive`` (the strict and
    sensitive thresholds a model was tuned at both land on the shared ``[presence]`` ones). Without the sensitive
    pair the scale is 1 (a pure offset, :func:`calibration_offset`). A model trained to squeeze its scores needs the
    scale: with an offset alone the logit gap between the two thresholds stays the shared one, too narrow for it."""
    offset = calibration_offset(tuned_threshold, presence_threshold)
    if tuned_sensitive is None:
        return 1.0, offset
    calibration_offset(tuned_sensitive, presence_sensitive)  # range checks
    if not tuned_sensitive < tuned_threshold or not presence_sensitive < presence_threshold:
        raise UspdError(f"calibration: the sensitive thresholds must be below the strict ones (tuned "
                        f"{tuned_sensitive} < {tuned_threshold}, presence {presence_sensitive} < {presence_threshold})")
    scale = (_logit(presence_threshold) - _logit(presence_sensitive)) / (_logit(tuned_threshold) - _logit(tuned_sensitive))
    return scale, _logit(presence_threshold) - scale * _logit(tuned_threshold)


def shipped_model_path() -> Path:
    """Path of the packaged int8 model (no network: importlib.resources)."""
    return Path(str(resources.files("uspd.models") / SHIPPED_MODEL))


def manifest_path(model_path: Path) -> Path:
    """``m.onnx`` and its float twin ``m.float.onnx`` share the manifest ``m.json``."""
    p = Path(model_path)
    return p.with_name(p.name.removesuffix(".onnx").removesuffix(".float") + ".json")


def load_manifest(model_path: Path) -> dict[str, Any]:
    """The JSON manifest beside ``model_path`` (same stem, ``.json``)."""
    mpath = manifest_path(model_path)
    if not mpath.exists():
        raise UspdError(f"{mpath}: model manifest not found (expected beside {Path(model_path).name})")
    try:
        return json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UspdError(f"{mpath}: cannot read model manifest: {exc}") from None


def feature_spec_from_manifest(manifest: dict[str, Any]) -> FeatureSpec:
    return FeatureSpec.from_dict(manifest.get("features", {}))


def _mover_readout(entry: Any, hidden: int, where: Path) -> tuple[np.ndarray, float] | None:
    """The manifest's ``mover_readout`` ({"weights": [hidden floats], "bias": float, ...}) -> (w (hidden,), b), or
    None when there is none; a malformed one is refused."""
    if entry is None:
        return None
    try:
        w = np.asarray(entry["weights"], dtype=np.float64)
        b = float(entry["bias"])
    except (KeyError, TypeError, ValueError):
        raise UspdError(f"{where}: mover_readout needs numeric weights and bias") from None
    if w.shape != (hidden,) or not (np.all(np.isfinite(w)) and math.isfinite(b)):
        raise UspdError(f"{where}: mover_readout needs {hidden} finite weights (the state size) and a finite bias, "
                        f"got {w.size} weights")
    return w, b


class NeuralDetector:
    """Detector protocol over the int8 ONNX streaming model.

    ``model_path``: an ONNX file with a manifest beside it, or None for the shipped one. ``carriers_hz``: used when
    the frames do not carry their carrier frequencies. ``.process(frames) -> Scores`` keeps the GRU state across
    calls; ``.reset()`` clears it.
    """

    def __init__(self, model_path: str | Path | None = None, carriers_hz=None):
        import onnxruntime as ort

        path = Path(model_path) if model_path else shipped_model_path()
        if not path.exists():
            raise UspdError(f"{path}: neural model not found")
        self.model_path = path
        self.manifest = load_manifest(path)
        self.spec = feature_spec_from_manifest(self.manifest)
        self.hidden = int(self.manifest.get("state_size", 48))
        #: The motion score's logit is multiplied by ``score_logit_scale`` and ``score_logit_offset`` added (manifest
        #: ``calibration``, see :func:`calibration_map`): moves the model's tuned operating point onto the shared
        #: ``[presence]`` thresholds.
        cal = self.manifest.get("calibration") or {}
        try:
            self.score_logit_offset = float(cal.get("score_logit_offset", 0.0))
            self.score_logit_scale = float(cal.get("score_logit_scale", 1.0))
        except (AttributeError, TypeError, ValueError):
            self.score_logit_offset = self.score_logit_scale = math.nan
        if not (math.isfinite(self.score_logit_offset) and math.isfinite(self.score_logit_scale)
                and self.score_logit_scale > 0):
            raise UspdError(f"{manifest_path(path)}: calibration needs a finite score_logit_offset and a finite "
                            f"score_logit_scale > 0, got {cal!r}"[:300])
        #: Mover readout (manifest ``mover_readout``, :mod:`uspd.train.readout`): weights (hidden,) and bias of a
        #: logistic readout of the GRU state after each hop: evidence that a pet or a robot vacuum moves and no person
        #: does (``Scores.mover``); None without one.
        self.mover_readout = _mover_readout(self.manifest.get("mover_readout"), self.hidden, manifest_path(path))
        self.carriers_hz = carriers_hz
        self._stream = FeatureStream(self.spec)
        self._echo_stream = EchoStream(self.spec)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise UspdError(f"{path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None
        #: True when the graph takes the echo features ``e`` (see the module doc).
        echo_input = [i for i in self._session.get_inputs() if i.name == "e"]
        self.uses_echo = bool(echo_input)
        n_echo = echo_input[0].shape[-1] if echo_input else None
        if isinstance(n_echo, int) and n_echo != self.spec.n_echo_inputs:
            raise UspdError(f"{manifest_path(path)}: its features give {self.spec.n_echo_inputs} echo inputs, the "
                            f"model takes {n_echo}")
        self.reset()

    @property
    def hop_s(self) -> float:
        """Time between hops (s) that its feature streams' time constants assume."""
        return self._stream.hop_s

    def reset(self) -> None:
        self._h = np.zeros((1, self.hidden), dtype=np.float32)
        self._stream.reset()
        self._echo_stream.reset()

    def process_features(self, feats: np.ndarray, echo: np.ndarray | None = None) -> Scores:
        """Run the model on model inputs (F, C, n_inputs) float32 [and echo inputs (F, n_inputs) for a model that takes
        them], one hop at a time with carried state."""
        scores, states = self._run(feats, echo, self.mover_readout is not None)
        if states is not None:
            w, b = self.mover_readout
            scores.mover = _sigmoid32(states.astype(np.float64) @ w + b)
        return scores

    def states(self, bands: np.ndarray, echo_bands: np.ndarray | None = None) -> tuple[Scores, np.ndarray]:
        """As :meth:`process_bands`, also returning the GRU state after each hop, (F, hidden) float32 (what the
        mover readout reads; :mod:`uspd.train.readout` fits it)."""
        return self._run(*self._model_inputs(bands, echo_bands), True)

    def _run(self, feats: np.ndarray, echo: np.ndarray | None, keep_states: bool
             ) -> tuple[Scores, np.ndarray | None]:
        """The model, one hop at a time with carried state: (Scores with the calibrated score, states (F, hidden) or
        None)."""
        n = feats.shape[0]
        if self.uses_echo and (echo is None or echo.shape[0] != n):
            raise UspdError(f"{self.model_path.name}: this model needs the front end's echo spectra "
                            "(frames.echo_db, or the echo band features of shards built since they were added) "
                            "for every hop")
        score = np.empty(n, dtype=np.float32)
        major = np.empty(n, dtype=np.float32)
        states = np.empty((n, self.hidden), dtype=np.float32) if keep_states else None
        run = self._session.run
        h = self._h
        for i in range(n):
            inputs = {"x": np.ascontiguousarray(feats[i]), "h": h}
            if self.uses_echo:
                inputs["e"] = np.ascontiguousarray(echo[i])
            probs, h = run(None, inputs)
            score[i], major[i] = probs[0], probs[1]
            if states is not None:
                states[i] = h[0]
        self._h = h
        if self.score_logit_offset or self.score_logit_scale != 1.0:
            score = shift_logit(score, self.score_logit_offset, self.score_logit_scale)
        return Scores(score=score, major=major), states

    def process(self, frames) -> Scores:
        """frames: Frames with spectra_db (F, n_carriers, n_mics, n_bins), freqs_hz -> Scores (F,)."""
        spectra = np.asarray(frames.spectra_db)
        if spectra.shape[0] == 0:
            return Scores(score=np.zeros(0, np.float32), major=np.zeros(0, np.float32),
                          mover=None if self.mover_readout is None else np.zeros(0, np.float32))
        carriers = frames_carriers_hz(frames, self.carriers_hz)
        bands = band_features(spectra, frames.freqs_hz, carriers, self.spec)
        echo_db = getattr(frames, "echo_db", None) if self.uses_echo else None
        echo_bands = None if echo_db is None else echo_band_features(echo_db, frames.freqs_hz, carriers, self.spec)
        return self.process_bands(bands, echo_bands)

    def process_bands(self, bands: np.ndarray, echo_bands: np.ndarray | None = None) -> Scores:
        """Velocity-band features (F, C, n_bands) [and echo band features (F, n_carriers, n_bands)], as
        :func:`band_features` / :func:`echo_band_features` give them (and training shards store them) -> Scores (F,),
        through the same background streams and model steps as :meth:`process`."""
        return self.process_features(*self._model_inputs(bands, echo_bands))

    def _model_inputs(self, bands: np.ndarray, echo_bands: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Band features through the background streams: (model inputs, echo inputs or None)."""
        echo = None
        if self.uses_echo and echo_bands is not None:
            echo = self._echo_stream.process(np.asarray(echo_bands, np.float32))
        return self._stream.process(bands), echo
