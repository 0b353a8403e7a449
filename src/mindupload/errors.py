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
