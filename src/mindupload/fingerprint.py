"""What made an output: the package's import graph, fingerprints of the code behind each command, and the
versions of the software that shapes a result. Standard library only, and nothing here imports the modules
it reads: the workflow computes every fingerprint once per run, in a fraction of a second.

The import graph is read from the source with `ast`; imports inside functions count (they are dependencies
too, only deferred). `tests/unit/test_architecture.py` checks the package's layering on the same graph.

A command's code is its handler in `<stage>/commands.py` (with the helpers it calls and its arguments in
`register`) and every package module it reaches through imports, with their parent packages. Each module
counts by its syntax tree without docstrings: a comment, a docstring or reformatting changes no fingerprint,
a changed statement does. The top-level `mindupload/__init__.py` holds only the version, which is provenance
(recorded in outputs), not code: an upgrade reruns what its new code changes, not everything.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.name  # "mindupload"
# Weights are not tokenizer identity, and hashing gigabytes would make every run slow.
WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".index.json")


def digest(data: bytes | str, length: int = 16) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:length]


# ---------------------------------------------------------------- the import graph


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def imports_in(nodes: Iterable[ast.AST], name: str, is_package: bool, known: set[str] | dict) -> set[str]:
    """The package's own modules that these statements of module `name` import (a `from pkg import mod`
    names the module itself; a `from pkg import function` names `pkg`)."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in _statements(nodes):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {target for target in found if target in known and target != name}


def _statements(nodes: Iterable[ast.AST]):
    """Every statement, nested ones included (imports are statements: expressions need no visit)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(getattr(node, field, ()))


class Package:
    """The package's source, read once: syntax trees, the import graph and code fingerprints."""

    def __init__(self, package: Path = PACKAGE):
        self.package = package
        self.paths = modules(package)
        self._trees: dict[str, ast.Module] = {}
        self._imports: dict[str, set[str]] = {}
        self._digests: dict[str, str] = {}

    def tree(self, name: str) -> ast.Module:
        """Module `name`'s syntax tree without docstrings, parsed once (and only when needed)."""
        if name not in self._trees:
            path = self.paths[name]
            self._trees[name] = _drop_docstrings(ast.parse(path.read_bytes(), str(path)))
        return self._trees[name]

    def imports(self, name: str) -> set[str]:
        """The package modules that module `name` imports."""
        if name not in self._imports:
            is_package = self.paths[name].name == "__init__.py"
            self._imports[name] = imports_in(self.tree(name).body, name, is_package, self.paths)
        return self._imports[name]

    @property
    def graph(self) -> dict[str, set[str]]:
        """The whole import graph: module -> the package modules it imports."""
        return {name: self.imports(name) for name in self.paths}

    def closure(self, roots: Iterable[str]) -> set[str]:
        """The modules `roots` reach through imports, with the parent packages Python runs on the way (the
        top-level package's `__init__` excepted: it holds the version only)."""
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name == self.package.name:  # the top-level package: its version only
                continue
            seen.add(name)
            todo.extend(self.imports(name))
            parent = name.rpartition(".")[0]
            if parent:
                todo.append(parent)
        return seen

    def module_digest(self, name: str) -> str:
        if name not in self._digests:
            self._digests[name] = digest(_code_dump(self.tree(name).body))
        return self._digests[name]

    # ------------------------------------------------------------ commands

    def command(self, subcommand: str) -> tuple[str, list[ast.stmt]]:
        """The commands module that defines `mindupload <subcommand>`, and the statements of it that make up
        that subcommand: module-level imports and constants, the handler `cmd_<name>` and the helpers it calls,
        and the `add_parser("<subcommand>")` block of `register` (its options and their defaults)."""
        handler = "cmd_" + subcommand.replace("-", "_")
        for name in sorted(self.paths):
            if not name.endswith(".commands"):
                continue
            body = self.tree(name).body
            functions = {node.name: node for node in body if isinstance(node, ast.FunctionDef)}
            if handler not in functions:
                continue
            shared = [node for node in body if not isinstance(node, ast.FunctionDef | ast.ClassDef)]
            block = _parser_block(functions.get("register"), subcommand)
            picked = _with_helpers([functions[handler], *block], functions)
            return name, [*shared, *picked]
        raise KeyError(f"no commands module defines {handler} (mindupload {subcommand})")

    def command_modules(self, subcommand: str, extra: Iterable[str] = ()) -> set[str]:
        """The package modules behind one subcommand (`extra`: modules it loads by name, e.g. a format)."""
        name, statements = self.command(subcommand)
        roots = imports_in(statements, name, False, self.paths) | set(extra)
        return self.closure(roots) - {name}

    def command_fingerprint(self, subcommand: str, extra: Iterable[str] = ()) -> str:
        """A short digest of the code behind `mindupload <subcommand>`: it changes exactly when that code does."""
        name, statements = self.command(subcommand)
        parts = [f"{name}:{subcommand}:{digest(_code_dump(statements))}"]
        modules = sorted(self.command_modules(subcommand, extra))
        parts += [f"{module}:{self.module_digest(module)}" for module in modules]
        return digest("\n".join(parts))


def _parser_block(register: ast.FunctionDef | None, subcommand: str) -> list[ast.stmt]:
    """The statements of `register` from `sub.add_parser("<subcommand>", ...)` to the next `add_parser`."""
    if register is None:
        return []
    block: list[ast.stmt] | None = None
    for node in register.body:
        opened = _add_parser_name(node)
        if opened is not None:
            if block is not None:
                break
            if opened == subcommand:
                block = []
        if block is not None:
            block.append(node)
    return block or []


def _add_parser_name(node: ast.stmt) -> str | None:
    value = node.value if isinstance(node, ast.Assign | ast.Expr) else None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "add_parser"
        and value.args
        and isinstance(value.args[0], ast.Constant)
    ):
        return value.args[0].value
    return None


def _with_helpers(nodes: list[ast.stmt], functions: dict[str, ast.FunctionDef]) -> list[ast.stmt]:
    """`nodes` and the module's functions they call by name, transitively."""
    picked, seen, todo = [], set(), list(nodes)
    while todo:
        node = todo.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        picked.append(node)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in functions and functions[sub.id] is not node:
                todo.append(functions[sub.id])
    return picked


def _code_dump(statements: Iterable[ast.stmt]) -> str:
    """The statements' syntax trees (docstrings already removed): no line numbers, comments or formatting."""
    return "\n".join(ast.dump(node) for node in statements)


def _drop_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        scope = isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if scope and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return tree


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


# ---------------------------------------------------------------- software and inputs outside the workflow


def versions(*distributions: str) -> str:
    """`name==version` of installed distributions, read from their metadata (nothing is imported); a missing
    one reads `name (not installed)`."""

    def one(name: str) -> str:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            return f"{name} (not installed)"

    return " ".join(one(name) for name in distributions)


def folder_digest(folder: str | Path) -> str:
    """A digest of a model folder's small files (tokenizer, configs), by content: what a tokenizer loads.
    Weights are left out (see WEIGHTS)."""
    folder = Path(folder).expanduser()
    parts = [
        f"{path.name}:{digest(path.read_bytes())}"
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.endswith(WEIGHTS)
    ]
    return digest("\n".join(parts))
