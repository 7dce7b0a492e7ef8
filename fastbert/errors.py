"""Exceptions raised for bad models and bad inputs; each message names the problem."""


class FastBertError(Exception):
    """Base class of every error fastbert raises on purpose."""


class UnsupportedModelError(FastBertError, ValueError):
    """The checkpoint's architecture is not one fastbert implements."""


class ModelNotFoundError(FastBertError, FileNotFoundError):
    """No local directory and no hub repository (cached or online) has that name."""


class CheckpointError(FastBertError, ValueError):
    """A weight file is missing, unreadable, or lacks tensors the model needs."""


class InputError(FastBertError, ValueError):
    """Inputs or arguments a call cannot run on: token ids, masks or lengths, texts, top_k, batch_size."""


class DeviceError(FastBertError, ValueError):
    """A device that is not there, or one fastbert does not run on."""


class DestinationError(FastBertError, ValueError):
    """Where a converted checkpoint cannot be written: the source itself, a file, or a directory in use."""
