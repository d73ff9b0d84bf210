"""Presence tracker: every transition, both thresholds, debounce, hangover, timeout, events' audio times."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from uspd.config import load_config
from uspd.errors import ConfigError
from uspd.presence.tracker import (Decision, PresenceConfig, PresenceTracker, decision_from_dict,
                                   decisions_to_arrays)

HOP_S = 0.05


def run(cfg: PresenceConfig, segments, tracker: PresenceTracker | None = None, t0_s: float = 0.0):
    """segments: list of (duration_s, score, major) -> (tracker, decisions). Hop times are t0 + k*HOP_S (k>=1)."""
    score, major = [], []
    for dur_s, s, m in segments:
        n = int(round(dur_s / HOP_S))
        score += [s] * n
        major += [m] * n
    t = t0_s + HOP_S * np.arange(1, len(score) + 1)
    tr = tracker or PresenceTracker(cfg)
    return tr, tr.update(t, SimpleNamespace(score=np.array(score), major=np.array(major)))


def events(decisions, type_=None):
    out = [e for d in decisions for e in d.events]
    return [e for e in out if type_ is None or e.type == type_]


def cfg(**kw) -> PresenceConfig:
    base = dict(threshold=0.6, sensitive_threshold=0.3, major_threshold=0.5, debounce_hops=3, hangover_s=1.0,
                sensitive_window_s=20.0, vacancy_timeout_s=30.0)
    base.update(kw)
    return PresenceConfig(**base)


def test_vacant_to_occupied_on_major_motion_with_debounce_and_times():
    _, ds = run(cfg(), [(5, 0.1, 0.0), (2, 0.9, 0.9), (3, 0.1, 0.0)])
    starts = events(ds, "motion_start")
    assert len(starts) == 1 and starts[0].kind == "major"
    # first hop above is t=5.05; with debounce 3 motion starts on the third hop, t=5.15
    assert starts[0].t == pytest.approx(5.15)
    (on,) = events(ds, "presence_on")
    assert on.t == pytest.approx(5.15)
    assert not any(d.motion for d in ds if d.t < 5.149)
    assert all(d.presence for d in ds if d.t >= 5.149)
    # score last above at t=7.0; hangover 1 s -> motion_end at 8.0 and motion true until then
    (end,) = events(ds, "motion_end")
    assert end.t == pytest.approx(8.0) and end.kind == "major"
    assert end.data["start_t"] == pytest.approx(5.15)
    assert all(d.motion for d in ds if 5.149 < d.t < 7.999)
    assert not any(d.motion for d in ds if d.t > 7.999)


def test_debounce_rejects_short_bursts():
    # 2 hops above (< debounce 3), repeated: never motion
    segs = [(1, 0.1, 0.0), (0.1, 0.95, 0.9)] * 10
    _, ds = run(cfg(), segs)
    assert not any(d.motion for d in ds)
    _, ds1 = run(cfg(debounce_hops=2), segs)
    assert len(events(ds1, "motion_start")) == 10


def test_hangover_bridges_short_gaps():
    segs = [(1, 0.1, 0), (1, 0.9, 0.9), (0.5, 0.1, 0), (1, 0.9, 0.9), (3, 0.1, 0)]
    _, ds = run(cfg(hangover_s=1.0), segs)
    assert len(events(ds, "motion_start")) == 1  # the 0.5 s gap is bridged
    _, ds0 = run(cfg(hangover_s=0.2), segs)
    assert len(events(ds0, "motion_start")) == 2
    assert events(ds0, "motion_end")[0].t == pytest.approx(2.2)


def test_empty_room_keeps_strict_threshold():
    # score 0.45 is above the sensitive threshold but below the strict one: nothing happens in a vacant room
    _, ds = run(cfg(), [(60, 0.45, 0.9)])
    assert not any(d.motion or d.presence for d in ds)
    assert all(d.threshold == pytest.approx(0.6) for d in ds)


def test_minor_motion_when_vacant_needs_strict_threshold_and_does_not_turn_presence_on():
    _, ds = run(cfg(), [(1, 0.1, 0), (2, 0.8, 0.1), (5, 0.1, 0)])
    (start,) = events(ds, "motion_start")
    assert start.kind == "minor"
    assert not any(d.presence for d in ds)
    assert not events(ds, "presence_on")


def test_sensitive_window_after_major_motion_detects_minor_motion_and_keeps_occupied():
    # walk in (major), then weak minor motion (0.45) at 10 s: detected (sensitive), kind minor
    c = cfg()
    _, ds = run(c, [(1, 0.1, 0), (2, 0.9, 0.9), (7, 0.1, 0), (1, 0.45, 0.1), (5, 0.1, 0)])
    starts = events(ds, "motion_start")
    assert [e.kind for e in starts] == ["major", "minor"]
    assert starts[1].t == pytest.approx(10.15)
    assert starts[1].data["threshold"] == pytest.approx(0.3)
    assert all(d.presence for d in ds if d.t > 1.2)
    # the minor motion resets the vacancy countdown: presence is still on 30 s after the MAJOR motion ended
    tr, ds = run(c, [(1, 0.1, 0), (2, 0.9, 0.9), (15, 0.1, 0), (1, 0.45, 0.1), (20, 0.1, 0)])
    assert not events(ds, "presence_off")
    assert tr.presence


def test_sensitive_window_expires():
    # minor motion 25 s after the last major motion (window 20 s): strict threshold again -> not detected
    _, ds = run(cfg(vacancy_timeout_s=100), [(1, 0.1, 0), (2, 0.9, 0.9), (25, 0.1, 0), (1, 0.45, 0.1), (2, 0.1, 0)])
    assert [e.kind for e in events(ds, "motion_start")] == ["major"]
    thr = {round(d.t, 2): d.threshold for d in ds}
    assert thr[20.0] == pytest.approx(0.3)   # last major at 3.0 -> window to 23.0
    assert thr[24.0] == pytest.approx(0.6)


def test_minor_extends_window_option():
    segs = [(1, 0.1, 0), (2, 0.9, 0.9), (15, 0.1, 0), (1, 0.45, 0.1), (15, 0.1, 0), (1, 0.45, 0.1), (2, 0.1, 0)]
    _, ds = run(cfg(vacancy_timeout_s=100), segs)
    assert len(events(ds, "motion_start")) == 2  # second minor at 34 s is outside the window from t=3 s
    _, ds = run(cfg(vacancy_timeout_s=100, minor_extends_window=True), segs)
    assert len(events(ds, "motion_start")) == 3


def test_vacancy_timeout_and_presence_off_time():
    tr, ds = run(cfg(), [(1, 0.1, 0), (2, 0.9, 0.9), (40, 0.1, 0)])
    (off,) = events(ds, "presence_off")
    # motion last true at t=3.95 (hangover ends at 4.0), timeout 30 s -> off at 33.95
    assert off.t == pytest.approx(33.95)
    assert off.data["last_motion_t"] == pytest.approx(3.95)
    assert all(d.presence for d in ds if 1.2 < d.t < 33.9)
    assert not any(d.presence for d in ds if d.t > 33.96)
    assert not tr.presence
    # after vacancy the strict threshold is back: a 0.45 score does nothing
    _, ds2 = run(cfg(), [(5, 0.45, 0.1)], tracker=tr, t0_s=43.0)
    assert not any(d.motion for d in ds2)


def test_occupied_again_after_vacancy_and_event_order():
    _, ds = run(cfg(debounce_hops=1, hangover_s=0.0),
                [(1, 0.9, 0.9), (31, 0.1, 0), (1, 0.9, 0.9), (1, 0.1, 0)])
    types = [e.type for e in events(ds)]
    assert types == ["motion_start", "presence_on", "motion_end", "presence_off",
                     "motion_start", "presence_on", "motion_end"]
    ts = [e.t for e in events(ds)]
    assert ts == sorted(ts)


def test_kind_upgrades_from_minor_to_major_and_turns_presence_on():
    _, ds = run(cfg(), [(1, 0.8, 0.1), (1, 0.8, 0.9), (3, 0.1, 0)])
    (start,) = events(ds, "motion_start")
    assert start.kind == "minor"
    (on,) = events(ds, "presence_on")
    assert on.t == pytest.approx(1.05)
    (end,) = events(ds, "motion_end")
    assert end.kind == "major"
    assert [d.kind for d in ds if d.motion][-1] == "major"


def test_no_motion_events_once_per_quiet_spell():
    c = cfg(no_motion_s=[5.0, 12.0], vacancy_timeout_s=100)
    tr, ds = run(c, [(10, 0.1, 0), (1, 0.9, 0.9), (20, 0.1, 0), (1, 0.9, 0.9), (6, 0.1, 0)])
    nm = events(ds, "no_motion")
    # none before the first motion; motion last true at 11.95 -> 16.95 and 23.95; then 32.95 -> 37.95 (5 s only)
    assert [(e.data["after_s"], round(e.t, 2)) for e in nm] == [(5.0, 16.95), (12.0, 23.95), (5.0, 37.95)]
    tr.watch_no_motion(2.0)
    _, ds2 = run(c, [(1, 0.9, 0.9), (4, 0.1, 0)], tracker=tr, t0_s=40.0)
    # the new timer fires at once for the spell already 7 s quiet, then again after the next motion
    nm2 = events(ds2, "no_motion")
    assert [e.data["after_s"] for e in nm2] == [2.0, 2.0] and nm2[0].t == pytest.approx(40.05)


def test_hold_freezes_countdown_and_ends_motion():
    c = cfg(no_motion_s=[10.0])
    tr, ds = run(c, [(1, 0.1, 0), (2, 0.9, 0.9)])
    assert tr.motion and tr.presence
    d = tr.hold(100.0)  # tone off from 3.0 to 100.0: 97 s unobserved, longer than the 30 s timeout
    assert isinstance(d, Decision) and not d.motion and d.presence
    assert [e.type for e in d.events] == ["motion_end"] and d.events[0].t == pytest.approx(100.0)
    # countdown resumes: motion was last true 0 s before the hold -> vacancy 30 s after 100.0, no_motion 10 s after
    _, ds2 = run(c, [(35, 0.1, 0)], tracker=tr, t0_s=100.0)
    (off,) = events(ds2, "presence_off")
    assert off.t == pytest.approx(130.0)
    (nm,) = events(ds2, "no_motion")
    assert nm.t == pytest.approx(110.0)
    # the sensitive window was frozen too: right after the hold the lower threshold still applies
    assert ds2[0].threshold == pytest.approx(0.3)


def test_chunking_does_not_change_decisions():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 400, 60)  # piecewise-constant random scores: quiet spells, bursts, long gaps
    score = np.repeat(rng.uniform(0, 1, 60) ** 2, lengths)
    major = np.repeat(rng.uniform(0, 1, 60), lengths)
    n = len(score)
    t = HOP_S * np.arange(1, n + 1)
    c = cfg(no_motion_s=[3.0])
    whole = PresenceTracker(c).update(t, SimpleNamespace(score=score, major=major))
    tr = PresenceTracker(c)
    parts = []
    for a, b in [(0, 1), (1, 17), (17, 500), (500, 500), (500, n)]:
        parts += tr.update(t[a:b], SimpleNamespace(score=score[a:b], major=major[a:b]))
    assert [d.to_dict() for d in parts] == [d.to_dict() for d in whole]
    assert {e.type for e in events(whole)} == {"motion_start", "motion_end", "presence_on", "presence_off",
                                               "no_motion"}  # the random sequence exercises every transition


def test_decision_json_round_trip_and_arrays():
    _, ds = run(cfg(), [(1, 0.1, 0), (2, 0.9, 0.9), (2, 0.1, 0)])
    line = json.dumps(ds[22].to_dict())
    back = decision_from_dict(json.loads(line))
    assert back.to_dict() == ds[22].to_dict()
    assert [e.type for e in back.events] == ["motion_start", "presence_on"]
    cols = decisions_to_arrays(ds)
    assert cols["motion"].sum() == sum(d.motion for d in ds)
    assert np.all(np.diff(cols["t"]) > 0)


def test_update_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        PresenceTracker().update(np.arange(3.0), SimpleNamespace(score=np.zeros(3), major=np.zeros(2)))


@pytest.mark.parametrize("key,value", [("threshold", 1.5), ("sensitive_threshold", 0.9), ("debounce_hops", 0),
                                       ("vacancy_timeout_s", 0), ("no_motion_s", [-1]), ("hangover_s", -1.0)])
def test_config_validation_is_one_line_error(tmp_path, key, value):
    p = tmp_path / "c.toml"
    p.write_text(f"[presence]\n{key} = {json.dumps(value)}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "\n" not in msg and key in msg and str(p) in msg


def test_config_section_loads_from_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[presence]\nvacancy_timeout_s = 600\nno_motion_s = [60, 120]\n")
    c = load_config(p).presence
    assert isinstance(c, PresenceConfig) and c.vacancy_timeout_s == 600.0 and c.no_motion_s == [60.0, 120.0]
