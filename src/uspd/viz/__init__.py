"""Pictures of recordings: the Doppler-band spectrogram behind ``uspd spectrogram``."""
from uspd.viz.spectrogram import BandSpectrogram, doppler_spectrogram, plot_spectrogram

__all__ = ["BandSpectrogram", "doppler_spectrogram", "plot_spectrogram"]
