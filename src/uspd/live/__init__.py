"""The live service behind ``uspd run``: sound devices (a full-duplex sound card or the room simulator), the emitted
tone and its duty cycle, the service loop that drives the one Pipeline, and the terminal view.

Modules: ``config`` ([device], [emission]), ``tone`` (click-free oscillator), ``audio`` (AudioDevice,
SimulatedDevice, SoundcardDevice, list_devices), ``duty`` (when the tone is on), ``service`` (LiveService, sinks),
``view`` (TerminalView).
"""
