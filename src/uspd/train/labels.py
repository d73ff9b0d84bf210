"""Per-hop training labels from a clip's :class:`uspd.recording.Labels` (numpy; scipy.ndimage for the runs of
:func:`approach_hops`).

A hop whose frame ends at ``t`` is labelled with the motion active in the newest half-window of its audio,
``[t - window_s/2, t]``; hops within ``edge_s`` of a motion interval's start or end are flagged ``edge`` (ambiguous:
the loss ignores them).
"""
from __future__ import annotations

import numpy as np

from uspd.recording.labels import CONFUSER_KINDS, MINOR_ACTIONS, Labels

#: ``motion`` codes.
NONE, MINOR, MAJOR = 0, 1, 2
#: ``action`` codes: 0 = none, then MINOR_ACTIONS in order (1 = reach, 2 = page, 3 = typing, 4 = cup), 5 = other.
ACTION_CODES = {name: i + 1 for i, name in enumerate(MINOR_ACTIONS)}
#: Bit i of ``confusers`` = CONFUSER_KINDS[i] active at that hop.
CONFUSER_BITS = {name: 1 << i for i, name in enumerate(CONFUSER_KINDS)}


def hop_labels(labels: Labels, t_s: np.ndarray, window_s: float = 0.1, edge_s: float = 0.25) -> dict[str, np.ndarray]:
    """Labels for hops ending at ``t_s`` (F,) s. Returns arrays of shape (F,):
    ``motion`` int8 (0 none, 1 minor, 2 major), ``action`` int8, ``distance_m`` float32 (nan if no motion),
    ``presence``/``pet``/``far`` bool, ``confusers`` uint16 bitmask, ``edge`` bool."""
    t = np.asarray(t_s, dtype=np.float64)
    lo = t - window_s / 2
    n = t.size
    out = {
        "motion": np.zeros(n, np.int8),
        "action": np.zeros(n, np.int8),
        "distance_m": np.full(n, np.nan, np.float32),
        "presence": np.zeros(n, bool),
        "pet": np.zeros(n, bool),
        "far": np.zeros(n, bool),
        "confusers": np.zeros(n, np.uint16),
        "edge": np.zeros(n, bool),
    }
    for iv in labels.intervals:
        active = (t >= iv.start_s) & (lo <= iv.end_s)
        if iv.kind in ("major", "minor"):
            code = MAJOR if iv.kind == "major" else MINOR
            take = active & (out["motion"] < code)
            out["motion"][take] = code
            if code == MINOR:
                out["action"][take] = ACTION_CODES.get(iv.action or "", 5)
            else:
                out["action"][take] = 0
            if iv.distance_m is not None:
                d = out["distance_m"]
                d[active] = np.fmin(d[active], iv.distance_m)
            out["edge"] |= (np.abs(t - iv.start_s) <= edge_s) | (np.abs(t - iv.end_s) <= edge_s)
        if iv.kind in ("presence", "pet", "far"):
            out[iv.kind] |= active
        if iv.kind in CONFUSER_BITS:
            out["confusers"][active] |= np.uint16(CONFUSER_BITS[iv.kind])
    return out


def approach_hops(motion: np.ndarray, presence: np.ndarray, far: np.ndarray, gap_hops: int = 10) -> np.ndarray:
    """(F,) bool: the hops of each run of ``far`` that overlaps or lies within ``gap_hops`` of a hop with a person
    within 5 m (``motion`` > 0 or ``presence``) -- a walker crossing the 5 m range, which the metric calls neither a
    false alarm nor a detection (:func:`uspd.evaluate.metrics.approaches`; 10 hops = its 0.5 s)."""
    from scipy.ndimage import binary_dilation, label

    far = np.asarray(far, bool)
    near = (np.asarray(motion) > 0) | np.asarray(presence, bool)
    if not far.any() or not near.any():
        return np.zeros(far.shape, bool)
    reach = binary_dilation(near, structure=np.ones(2 * gap_hops + 1, bool)) if gap_hops > 0 else near
    runs, _ = label(far)
    touching = np.unique(runs[reach & far])
    return np.isin(runs, touching[touching > 0])
