"""User-facing errors.

A `WestronError` is a mistake the user can fix (a missing folder, a bad flag, a corrupt file).
The CLI prints its message on one line and exits with status 2, without a traceback.
"""


class WestronError(Exception):
    """An error caused by the user's input, reported as one clear line."""


class CheckpointError(WestronError, OSError):
    """A checkpoint folder or file is missing, corrupt, or does not fit the model."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (westron.cli.termination_as_exception): unwinds like Ctrl-C, so temporary
    files are removed on the way out and a trainer saves a checkpoint."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
