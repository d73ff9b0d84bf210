"""Doppler features: the streaming front end (audio chunks in, per-hop Doppler spectra out)."""
from uspd.features.frontend import DopplerFrontEnd, Frames, FrontEndConfig

__all__ = ["DopplerFrontEnd", "Frames", "FrontEndConfig"]
