"""Routines: what happens when presence changes.

* ``config.py``: the ``[routines]`` rules (trigger -> command / webhook / MQTT action);
* ``engine.py``: :class:`RoutineEngine`, fed with decisions by the live service, runs everything on worker threads;
* ``actions.py``: running a command (no shell, event in USPD_* variables) and POSTing a webhook (with retries);
* ``mqtt.py``: ``[mqtt]`` and :class:`HomeAssistantPublisher` (discovery, availability, states, events);
* ``eventlog.py``: ``[log]`` and :class:`EventLog`, the SQLite log that ``uspd events`` reads.
"""
