"""Recording format: multichannel WAV + JSON sidecar (+ reference WAV, + labels). See ``format.py``."""
from uspd.recording.format import Sidecar, labels_path, read_sidecar, sidecar_path, write_sidecar
from uspd.recording.io import RecordingReader, RecordingWriter
from uspd.recording.labels import LabelInterval, Labels, read_labels, write_labels

__all__ = ["Sidecar", "read_sidecar", "write_sidecar", "sidecar_path", "labels_path", "RecordingReader",
           "RecordingWriter", "Labels", "LabelInterval", "read_labels", "write_labels"]
