"""Errors that reach the user as one line (``uspd: error: ...``) and a non-zero exit, never a traceback."""


class UspdError(Exception):
    """Base class: the message is one line, names the file (if any) and the problem."""


class RecordingError(UspdError):
    """A recording (WAV, sidecar, reference, labels) is missing, malformed or inconsistent."""


class ConfigError(UspdError):
    """A config file or option is invalid."""


class DeviceError(UspdError):
    """A sound device cannot do what is needed."""
