"""Doppler features: the streaming front end (audio chunks in, per-hop Doppler spectra out) and the carrier
demodulator it shares with the spectrogram."""
from uspd.features.demodulator import CarrierDemodulator, decimation_lowpass
from uspd.features.frontend import DopplerFrontEnd, Frames, FrontEndConfig

__all__ = ["CarrierDemodulator", "decimation_lowpass", "DopplerFrontEnd", "Frames", "FrontEndConfig"]
