"""Acoustic physics shared by the simulator, the features and the tests.

- Sound speed in air from temperature: c = 331.3 * sqrt(1 + T/273.15) m/s (ideal-gas approximation, dry air;
  343.2 m/s at 20 degC).
- Pure-tone atmospheric absorption, ISO 9613-1:1993 ("Acoustics - Attenuation of sound during propagation
  outdoors - Part 1: Calculation of the absorption of sound by the atmosphere"), equations (3)-(5) and annex B
  (saturation vapour pressure). The formula is valid beyond the standard's 10 kHz table range (the standard says
  so explicitly for ultrasonic scale modelling): about 0.52 dB/m at 20 kHz and 1.32 dB/m at 40 kHz at 20 degC,
  50 % RH, 101.325 kPa.
- Doppler shift of an echo from the rate of change of its total path length L(t) = |speaker->reflector| +
  |reflector->mic|: f = f0 * (1 - (dL/dt) / c), i.e. about 2 v f0 / c for a radial mover at speed v.
- Loudspeaker directivity: a rigid circular piston of radius a radiates 2 J1(x) / x, x = k a sin(theta), of its
  on-axis pressure at angle theta off its axis (Kinsler et al., "Fundamentals of Acoustics", 4th ed., section 7.4:
  -3 dB at x = 1.616, first null at x = 3.832, first side lobe -17.6 dB at x = 5.136), times the Kirchhoff
  obliquity factor (1 + cos theta) / 2 for a driver in a box rather than an infinite baffle (half at 90 degrees,
  nothing straight behind). A 1 cm tweeter at 40 kHz (k a = 7.3) beams: -3 dB at 12.5 degrees.
"""
from __future__ import annotations

import numpy as np

#: Reference atmospheric pressure of ISO 9613-1 (kPa).
REFERENCE_PRESSURE_KPA = 101.325
#: Reference air temperature of ISO 9613-1 (K).
_T0_K = 293.15
#: Triple-point isotherm temperature of water (K), ISO 9613-1 annex B.
_T01_K = 273.16
_KELVIN = 273.15


def speed_of_sound_m_s(temperature_c=20.0):
    """Speed of sound in air (m/s) at ``temperature_c`` (degC, scalar or array): 331.3 * sqrt(1 + T/273.15)."""
    return 331.3 * np.sqrt(1.0 + np.asarray(temperature_c, dtype=float) / _KELVIN)


def air_absorption_db_per_m(f_hz, temperature_c=20.0, humidity_pct=50.0, pressure_kpa=REFERENCE_PRESSURE_KPA):
    """Pure-tone attenuation coefficient alpha (dB/m) of ISO 9613-1:1993, equations (3)-(5) and annex B.

    f_hz: frequency (Hz, scalar or array); temperature_c: air temperature (degC); humidity_pct: relative humidity
    (%); pressure_kpa: ambient pressure (kPa). Relative humidity is converted to the molar concentration of water
    vapour h (%) with the standard's saturation vapour pressure formula
    p_sat/p_r = 10^(-6.8346 (T01/T)^1.261 + 4.6151); the oxygen and nitrogen relaxation frequencies are
    f_rO = (p_a/p_r)(24 + 4.04e4 h (0.02 + h)/(0.391 + h)) and
    f_rN = (p_a/p_r)(T/T0)^-1/2 (9 + 280 h exp(-4.170((T/T0)^-1/3 - 1))).
    """
    f = np.asarray(f_hz, dtype=float)
    t_k = np.asarray(temperature_c, dtype=float) + _KELVIN
    pa_rel = np.asarray(pressure_kpa, dtype=float) / REFERENCE_PRESSURE_KPA
    psat_rel = 10.0 ** (-6.8346 * (_T01_K / t_k) ** 1.261 + 4.6151)
    h = np.asarray(humidity_pct, dtype=float) * psat_rel / pa_rel
    t_rel = t_k / _T0_K
    fr_o = pa_rel * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = pa_rel * t_rel ** -0.5 * (9.0 + 280.0 * h * np.exp(-4.170 * (t_rel ** (-1.0 / 3.0) - 1.0)))
    f2 = f * f
    return 8.686 * f2 * (
        1.84e-11 / pa_rel * t_rel ** 0.5
        + t_rel ** -2.5 * (
            0.01275 * np.exp(-2239.1 / t_k) / (fr_o + f2 / fr_o)
            + 0.1068 * np.exp(-3352.0 / t_k) / (fr_n + f2 / fr_n)
        )
    )


def doppler_shift_hz(f0_hz, path_rate_m_s, c=None):
    """Doppler shift (Hz) of an echo whose total path length changes at ``path_rate_m_s`` (m/s, dL/dt).

    f - f0 = -f0 * (dL/dt) / c: negative when the path grows (receding). A reflector moving radially towards a
    co-located speaker and mic at v has dL/dt = -2 v, so the shift is +2 v f0 / c. ``c`` defaults to 20 degC air.
    """
    if c is None:
        c = speed_of_sound_m_s(20.0)
    return -np.asarray(f0_hz, dtype=float) * np.asarray(path_rate_m_s, dtype=float) / c


def spreading_gain(r1_m, r2_m):
    """Amplitude factor 1/(r1 r2) of a point-reflector echo (r1: speaker->target, r2: target->mic, metres)."""
    return 1.0 / (np.asarray(r1_m, dtype=float) * np.asarray(r2_m, dtype=float))


def piston_directivity(cos_theta, ka):
    """Amplitude re on-axis of a piston of k a = ``ka`` (2 pi f a / c) in a box, at ``cos_theta`` (cosine of the
    angle off its axis; arrays broadcast): |2 J1(x) / x| (1 + cos theta) / 2, x = k a sin theta. ``ka`` = 0: 1
    everywhere (a point source, omnidirectional)."""
    from scipy.special import j1

    cos_t = np.clip(np.asarray(cos_theta, dtype=float), -1.0, 1.0)
    ka = np.asarray(ka, dtype=float)
    x = ka * np.sqrt(1.0 - cos_t * cos_t)
    safe = np.where(x > 1e-6, x, 1.0)
    piston = np.where(x > 1e-6, np.abs(2.0 * j1(safe) / safe), 1.0)
    return np.where(ka > 0, piston * (1.0 + cos_t) / 2.0, 1.0)


def db_to_amplitude(level_db):
    """10^(dB/20)."""
    return 10.0 ** (np.asarray(level_db, dtype=float) / 20.0)
