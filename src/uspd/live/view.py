"""The terminal view of ``uspd run``.

On a terminal: a small panel redrawn in place (plain ANSI escapes, ~7 Hz) with the audio time, the motion score as
a bar with the active threshold marked, the motion and presence states, the tone state and the last events.
Otherwise (a pipe, a log file): one line per event, so the output stays greppable. ``NO_COLOR`` disables colours.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO

_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"
_GREEN, _YELLOW, _CYAN, _RED, _GREY = "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[31m", "\x1b[90m"

_EVENT_TEXT = {
    "motion_start": "motion started",
    "motion_end": "motion ended",
    "presence_on": "presence ON",
    "presence_off": "presence OFF",
    "no_motion": "no motion",
    "tone_on": "tone on",
    "tone_off": "tone off",
}


def format_time_s(t_s: float) -> str:
    """Audio time as H:MM:SS.s (e.g. 0:01:23.4)."""
    t_s = max(0.0, float(t_s))
    h, rem = divmod(t_s, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}"


def describe_event(ev: dict[str, Any]) -> str:
    """One short human sentence for an event dict (type, t, kind, data)."""
    text = _EVENT_TEXT.get(ev["type"], ev["type"])
    kind, data = ev.get("kind"), ev.get("data") or {}
    if kind:
        text += f" ({kind})"
    if ev["type"] == "no_motion" and "after_s" in data:
        text += f" for {data['after_s']:g} s"
    if ev["type"] == "motion_end" and "duration_s" in data:
        text += f" after {data['duration_s']:.1f} s"
    if ev["type"] == "presence_off" and "after_s" in data:
        text += f" (no motion for {data['after_s']:g} s)"
    if ev["type"] == "tone_off" and data.get("until_t") is not None:
        text += f" ({data.get('reason', 'duty cycle')}; back on at {format_time_s(data['until_t'])})"
    elif ev["type"] in ("tone_on", "tone_off") and data.get("reason"):
        text += f" ({data['reason']})"
    return text


@dataclass
class ViewState:
    """What the panel shows (updated by the service every block)."""

    t_s: float = 0.0
    score: float = 0.0
    threshold: float | None = None
    motion: bool = False
    kind: str | None = None
    presence: bool = False
    presence_since_s: float | None = None
    tone_on: bool = True
    listening: bool = True
    tone_on_fraction: float | None = None
    tone_back_s: float | None = None


class TerminalView:
    """Show the service state on ``stream``: an in-place panel on a TTY (``live=True``), event lines otherwise.

    title: first line of the panel. carrier_hz: shown next to the tone state. n_events: events kept on the panel.
    refresh_s: minimum wall-clock time between redraws (display pacing only; all times shown are audio time).
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, title: str = "uspd run",
                 carrier_hz: float | None = None, n_events: int = 6, refresh_s: float = 0.15,
                 color: bool | None = None, width: int = 64):
        self.stream = stream if stream is not None else sys.stdout
        isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = isatty if live is None else live
        self.color = (self.live and "NO_COLOR" not in os.environ) if color is None else color
        enc = (getattr(self.stream, "encoding", None) or "").lower()
        self.unicode = "utf" in enc
        self.title = title
        self.carrier_hz = carrier_hz
        self.events: deque[dict[str, Any]] = deque(maxlen=n_events)
        self.refresh_s = refresh_s
        self.width = width
        self.state = ViewState()
        self._lines_drawn = 0
        self._last_draw = -1e9
        self._closing = False

    # --- formatting helpers ---------------------------------------------------------------------------------------
    def _c(self, text: str, *codes: str) -> str:
        return f"{''.join(codes)}{text}{_RESET}" if self.color and codes else text

    def bar(self, score: float, threshold: float | None, width: int = 30) -> str:
        """The score 0..1 as a bar of ``width`` cells; the threshold cell is marked."""
        full, empty, mark = ("█", "░", "│") if self.unicode else ("#", "-", "|")
        n = int(round(min(max(score, 0.0), 1.0) * width))
        cells = [full] * n + [empty] * (width - n)
        if threshold is not None:
            k = min(width - 1, max(0, int(round(threshold * width))))
            if k >= n:
                cells[k] = mark
        text = "".join(cells)
        if not self.color:
            return text
        col = _RED if threshold is not None and score >= threshold else _CYAN
        return self._c(text[:n], col) + self._c(text[n:], _GREY)

    def panel_lines(self) -> list[str]:
        """The panel as text lines (without cursor control)."""
        s = self.state
        lines = [self._c(self.title, _BOLD)]
        lines.append(f"  audio time  {format_time_s(s.t_s)}")
        thr = f"   threshold {s.threshold:.2f}" if s.threshold is not None else ""
        if s.listening:
            lines.append(f"  score       {s.score:4.2f} {self.bar(s.score, s.threshold)}{thr}")
        else:
            lines.append(f"  score       {self._c('  -- (paused while the tone is off)', _DIM)}")
        motion = self._c(f"MOTION ({s.kind})", _BOLD, _YELLOW) if s.motion else self._c("still", _DIM)
        lines.append(f"  motion      {motion}")
        if s.presence:
            since = f" since {format_time_s(s.presence_since_s)}" if s.presence_since_s is not None else ""
            pres = self._c("OCCUPIED", _BOLD, _GREEN) + since
        else:
            pres = self._c("vacant", _DIM)
        if not s.listening and s.presence:
            pres += self._c("  (held)", _DIM)
        lines.append(f"  presence    {pres}")
        khz = f" {self.carrier_hz / 1000:.1f} kHz" if self.carrier_hz else ""
        if s.tone_on:
            tone = self._c("ON", _GREEN) + khz + ("" if s.listening else self._c("  (settling)", _DIM))
        else:
            back = f", back on at {format_time_s(s.tone_back_s)}" if s.tone_back_s is not None else ""
            tone = self._c("off", _DIM) + self._c(f"  (duty cycle{back})", _DIM)
        if s.tone_on_fraction is not None:
            tone += self._c(f"   on {100 * s.tone_on_fraction:.0f}% of the time", _DIM)
        lines.append(f"  tone        {tone}")
        rule = ("─" if self.unicode else "-") * max(0, self.width - 10)
        lines.append(self._c(f"  events {rule}", _DIM))
        if not self.events:
            lines.append(self._c("    (none yet)", _DIM))
        for ev in self.events:
            lines.append(f"    {format_time_s(ev['t'])}  {self._event_text(ev)}")
        if not self._closing:
            lines.append(self._c("  Ctrl-C to stop", _DIM))
        return lines

    def _event_text(self, ev: dict[str, Any]) -> str:
        text = describe_event(ev)
        if ev["type"] == "presence_on":
            return self._c(text, _GREEN)
        if ev["type"] == "presence_off":
            return self._c(text, _RED)
        if ev["type"] == "motion_start":
            return self._c(text, _YELLOW)
        if ev["type"] in ("tone_on", "tone_off", "motion_end"):
            return self._c(text, _DIM)
        return text

    # --- output -----------------------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # closed pipe or stream: the service keeps running
            pass

    def draw(self, force: bool = False) -> None:
        """Redraw the panel in place (live mode; rate-limited to ``refresh_s`` unless ``force``)."""
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.refresh_s:
            return
        self._last_draw = now
        lines = self.panel_lines()
        out = []
        if self._lines_drawn:
            out.append(f"\x1b[{self._lines_drawn}F")  # back to the first line of the panel
        else:
            out.append("\x1b[?25l")  # hide the cursor while the panel is live
        out.extend(f"\x1b[2K{line}\n" for line in lines)
        if len(lines) < self._lines_drawn:  # clear what is left of a longer previous panel
            out.append("\x1b[0J")
        self._lines_drawn = len(lines)
        self._write("".join(out))

    def update(self, **state: Any) -> None:
        """Set fields of :class:`ViewState` (t_s, score, threshold, motion, kind, presence, ...) and redraw."""
        for k, v in state.items():
            setattr(self.state, k, v)
        self.draw()

    def event(self, ev: dict[str, Any]) -> None:
        """Show an event dict (type, t, kind, data): on the panel, or as one line when not live."""
        if ev["type"] == "presence_on":
            self.state.presence_since_s = ev["t"]
        self.events.append(ev)
        if self.live:
            self.draw(force=True)
        else:
            self._write(f"{format_time_s(ev['t'])}  {describe_event(ev)}\n")

    def message(self, text: str) -> None:
        """A line of text outside the panel (start-up and summary lines)."""
        if self.live and self._lines_drawn:
            self.draw(force=True)
        self._write(text + "\n")
        if self.live:
            self._lines_drawn = 0

    def close(self) -> None:
        """Final redraw and give the cursor back."""
        if self.live:
            self._closing = True  # the final panel, without the Ctrl-C hint
            self.draw(force=True)
            self._write("\x1b[?25h")
