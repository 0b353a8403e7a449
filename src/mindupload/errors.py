"""Errors a user can act on: the CLI prints them as one sentence, without a traceback."""


class UserError(Exception):
    """A problem with the user's input or configuration, not a bug in mind-upload.

    The message names the file (and line or record) and what to do. It never quotes message text:
    chats are private, and errors end up in logs.
    """


class ParseError(UserError):
    """An export that cannot be read as the format it claims to be."""

    def __init__(self, path, what: str, line: int | None = None, hint: str | None = None, unit: str = "line"):
        where = f"{path}, {unit} {line}" if line is not None else f"{path}"
        message = f"{where}: {what}"
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.path = path
        self.line = line


# Write failures that are the machine's, not a bug: the disk (or the quota, or `ulimit -f`) is full.
DISK_FULL_ERRNOS = frozenset({28, 122, 27})  # ENOSPC, EDQUOT, EFBIG


class DiskFullError(UserError, OSError):
    """A write failed for lack of space; names the file being written. Also an OSError, for callers that
    catch those."""

    def __init__(self, path, errno: int | None = 28) -> None:
        reason = "File too large (a file-size limit, `ulimit -f`?)" if errno == 27 else "No space left on device"
        super().__init__(f"{reason}: {path}. Free some space (or raise the limit) and run again.")
        self.path = path


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and not isinstance(error, DiskFullError) and error.errno in DISK_FULL_ERRNOS
