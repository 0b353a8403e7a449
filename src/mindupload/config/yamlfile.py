"""Config files read strictly: a YAML syntax error names the file and line (never the text on it), and a key
written twice in one mapping is an error, where YAML would silently keep the last one (two sources under one
name: one export quietly dropped)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mindupload.errors import UserError

_SAFE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Quoted words from the file in PyYAML's problem text (an alias, a tag); its own tokens ('<block end>',
# ':') are kept.
_QUOTED = re.compile(r"'[^'\s<]{4,}'|\"[^\"]*\"")


def shown_key(key: object) -> str:
    """A config key as it may appear in an error: identifier-like keys as written, anything else not at all
    (a key can be a typo'd privacy term or a name)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"[{key}]"
    text = str(key)
    return text if _SAFE_KEY.fullmatch(text) else "<a key not shown>"


def key_path(parts) -> str:
    out = ""
    for part in parts:
        shown = shown_key(part)
        out += shown if shown.startswith("[") or not out else f".{shown}"
    return out or "(top level)"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise _DuplicateKey(key, first, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, again: int) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


def load_yaml(path: str | Path) -> dict:
    """A YAML (or JSON) config file as a dict; UserError naming the file and line of what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file.") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text. Save the config file as UTF-8.") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the config file ({e.strerror}).") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _DuplicateKey as e:
        raise UserError(
            f"{path}, line {e.again}: key `{shown_key(e.key)}` is written twice in one section (first on line "
            f"{e.first}); YAML would keep only the last. Give each its own name, or remove one."
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        # The problem names the kind of mistake; quoted bits of the file are left out (they may be private).
        problem = _QUOTED.sub("…", e.problem or "unreadable")
        raise UserError(
            f"{where}: not valid YAML ({problem}). Check the indentation (spaces, not tabs) and quoting there."
        ) from None
    except yaml.YAMLError:
        raise UserError(f"{path}: not valid YAML.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config file holds keys at its top level (`me:`, `sources:`, ...).")
    return data
