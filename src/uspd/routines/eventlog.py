"""The event log: every presence/motion event in SQLite (WAL), with audio time and wall time.

One row per event, committed as it happens (``synchronous=FULL``: a killed service, or a power cut after the commit
returned, loses nothing that was reported as logged; WAL keeps the file consistent however the writer dies).
``uspd events`` reads it while the service writes (WAL lets readers and the writer run at once).

Table ``events``: ``id`` (increasing), ``t_s`` (audio time of the event, s, restarts with each run), ``wall_time``
(Unix time, s), ``type``, ``kind`` (major/minor or NULL), ``score`` (detector score at the event, 0..1, or NULL),
``data`` (JSON object).
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uspd.errors import ConfigError, UspdError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t_s REAL NOT NULL,
    wall_time REAL NOT NULL,
    type TEXT NOT NULL,
    kind TEXT,
    score REAL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_wall_time ON events (wall_time);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
"""
_COLUMNS = "id, t_s, wall_time, type, kind, score, data"


class EventLogError(UspdError):
    """The event log file cannot be opened, created or read."""


def default_log_path() -> str:
    """``$XDG_STATE_HOME/uspd/events.sqlite3``, else ``~/.local/state/uspd/events.sqlite3``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return os.path.join(state, "uspd", "events.sqlite3")


@dataclass
class LogConfig:
    """The ``[log]`` section. enabled: write events to the log; path: SQLite file (``~`` is expanded)."""

    enabled: bool = True
    path: str = field(default_factory=default_log_path)

    def validate(self, where: str = "[log]") -> None:
        if not self.path.strip():
            raise ConfigError(f"{where}.path: must not be empty")

    @property
    def resolved_path(self) -> Path:
        return Path(os.path.expanduser(self.path))


def json_default(obj: Any) -> Any:
    """JSON fallback for numpy scalars/arrays, sets and paths (anything else: its str())."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def to_json(obj: Any) -> str:
    """Compact JSON (numpy values converted; non-finite floats become null)."""
    return json.dumps(_finite(obj), default=json_default, separators=(",", ":"), allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _finite(obj.tolist())
    return obj


@dataclass(frozen=True)
class LoggedEvent:
    """One row of the log."""

    id: int
    t_s: float
    wall_time: float
    type: str
    kind: str | None
    score: float | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "t_s": self.t_s, "wall_time": self.wall_time, "type": self.type, "kind": self.kind,
                "score": self.score, "data": self.data}

    @classmethod
    def from_row(cls, row: tuple) -> LoggedEvent:
        try:
            data = json.loads(row[6]) if row[6] else {}
        except json.JSONDecodeError:
            data = {"_raw": row[6]}
        return cls(int(row[0]), float(row[1]), float(row[2]), row[3], row[4],
                   None if row[5] is None else float(row[5]), data)


class EventLog:
    """SQLite event log at ``path`` (created with its folder unless ``create=False``). Thread-safe.

    ``append`` commits each event before returning its id; ``query`` and ``follow`` read.
    """

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(os.path.expanduser(os.fspath(path)))
        if not create and not self.path.is_file():
            raise EventLogError(f"{self.path}: no event log there (see [log] path, or pass --db)")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise EventLogError(f"{self.path}: cannot open event log: {exc}") from None
        self._lock = threading.Lock()
        try:
            self._setup(create)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise EventLogError(f"{self.path}: not a usable event log: {exc}") from None

    def _setup(self, create: bool) -> None:
        c = self._conn
        c.execute("PRAGMA busy_timeout = 10000")
        if create:
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"cannot switch to WAL mode (got {mode})")
            c.execute("PRAGMA synchronous = FULL")
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"written by a newer uspd (schema {version} > {SCHEMA_VERSION})")
            c.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
        else:
            has_table = c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone()
            if not has_table:
                raise sqlite3.DatabaseError("no 'events' table (not a uspd event log)")

    # -- writing ---------------------------------------------------------------------------------------------
    def append(self, type: str, t_s: float, kind: str | None = None, score: float | None = None,
               data: dict[str, Any] | None = None, wall_time: float | None = None) -> int:
        """Insert one event and commit it; return its id. t_s: audio time (s); wall_time: Unix time (default now)."""
        wall = time.time() if wall_time is None else float(wall_time)
        score_v = None if score is None or not math.isfinite(float(score)) else float(score)
        row = (float(t_s), wall, str(type), kind, score_v, to_json(data or {}))
        with self._lock:
            try:
                cur = self._conn.execute(
                    "INSERT INTO events (t_s, wall_time, type, kind, score, data) VALUES (?, ?, ?, ?, ?, ?)", row)
            except sqlite3.Error as exc:
                raise EventLogError(f"{self.path}: cannot write event: {exc}") from None
            return int(cur.lastrowid)

    # -- reading ---------------------------------------------------------------------------------------------
    def query(self, since: float | None = None, type: str | Iterable[str] | None = None, limit: int | None = None,
              after_id: int | None = None) -> list[LoggedEvent]:
        """Events in id order. since: Unix time (s), inclusive; type: one type or several; limit: the LAST
        ``limit`` matching events; after_id: only ids greater than this."""
        where, args = [], []
        if since is not None:
            where.append("wall_time >= ?")
            args.append(float(since))
        if after_id is not None:
            where.append("id > ?")
            args.append(int(after_id))
        if type is not None:
            types = [type] if isinstance(type, str) else list(type)
            where.append(f"type IN ({', '.join('?' * len(types))})")
            args.extend(types)
        sql = f"SELECT {_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None and limit > 0:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT {int(limit)})"
        sql += " ORDER BY id"
        with self._lock:
            try:
                rows = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise EventLogError(f"{self.path}: cannot read event log: {exc}") from None
        return [LoggedEvent.from_row(r) for r in rows]

    def last_id(self) -> int:
        """The highest id so far (0 if empty)."""
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    def types(self) -> set[str]:
        """The event types present in the log."""
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT DISTINCT type FROM events")}

    def follow(self, after_id: int | None = None, type: str | Iterable[str] | None = None, poll_s: float = 0.25,
               idle_timeout_s: float | None = None) -> Iterator[LoggedEvent]:
        """Yield events as they are written, from ``after_id`` (default: from now on). Polls every ``poll_s``
        seconds; ends after ``idle_timeout_s`` seconds without a new event (None = never)."""
        last = self.last_id() if after_id is None else int(after_id)
        types = None if type is None else ({type} if isinstance(type, str) else set(type))
        idle_since = time.monotonic()
        while True:
            new = self.query(after_id=last)  # unfiltered, so skipped rows are never re-read nor missed
            if new:
                last = new[-1].id
                matching = [ev for ev in new if types is None or ev.type in types]
                if matching:
                    idle_since = time.monotonic()
                    yield from matching
                    continue
            if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                return
            time.sleep(poll_s)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
