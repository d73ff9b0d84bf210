"""uspd: ultrasonic presence detection with the speaker and microphones a device already has.

Data flow (one folder each): simulate -> recording -> features -> detector -> presence -> routines,
with ``live`` driving it from a sound card (or the simulator) and ``evaluate`` measuring it.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("uspd")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
