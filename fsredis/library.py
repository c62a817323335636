"""Build the Lua library from ``lua/``: one source, two shapes.

Each command file under ``lua/`` starts with directives::

    --! function: fs_get          the name it is registered and called under
    --! flags: no-writes          optional; read-only commands (FCALL_RO, EVALSHA_RO, replicas)
    --! include: lib/now_ms.lua   helpers it uses, one per line

Helpers live in ``lua/lib/``, one ``local function`` each, and may include other helpers. The
bundler emits every helper once, before anything that needs it, and fails loudly on a missing,
repeated or circular include. From the same files it builds:

* the Functions library (``FUNCTION LOAD REPLACE``), where each command becomes
  ``local function <name>(KEYS, ARGV) ... end`` registered with its flags, and
* one script per command for ``EVALSHA``, the helpers followed by the body, so ``KEYS`` and
  ``ARGV`` are the script's own.

The library carries a version (package version + a digest of the bundled source) that
``fs_version`` returns, so a client can tell when a server runs another build.

The schema registry is compiled into the Functions library: ``lib/registry.lua`` holds the
placeholder ``@REGISTRY@`` that :meth:`Library.with_registry` fills with a Lua table. Commands
that include it (the checked writes) exist only as functions: a script run by ``EVALSHA`` is one
client's copy and could enforce an outdated registry, while the Functions library is the one
state every writer on the server shares (clients, sidecars, ``redis-cli FCALL``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fsredis.errors import LibraryError

try:
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

LIBRARY_NAME = "fsredis"
VERSION_PLACEHOLDER = "@LIBRARY_VERSION@"
REGISTRY_PLACEHOLDER = "@REGISTRY@"
REGISTRY_HELPER = "lib/registry.lua"
EMPTY_REGISTRY = "{groups = {}, strict = {}, versions = {}, empty = true}"
_DIRECTIVE = re.compile(r"^--!\s*(\w+)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class LuaFile:
    """One file of the Lua source, split into its directives and its code."""

    path: str
    includes: tuple[str, ...]
    function: str | None
    flags: tuple[str, ...]
    code: str


@dataclass(frozen=True)
class Library:
    """The bundled library: what ``FUNCTION LOAD`` takes and what ``EVALSHA`` runs.

    ``scripts`` and ``shas`` lack the functions-only commands (those that check the registry)."""

    version: str
    source: str
    scripts: dict[str, str]
    shas: dict[str, str]
    readonly: frozenset[str] = field(default_factory=frozenset)
    template: str = ""
    """``source`` before the registry table is filled in."""

    def with_registry(self, table: str) -> Library:
        """This library with ``table`` (Lua source of the compiled registry) as its registry."""
        return dataclasses.replace(self, source=self.template.replace(REGISTRY_PLACEHOLDER, table))


def parse(path: str, text: str) -> LuaFile:
    """Split a Lua file into its ``--!`` directives and the code after them."""
    includes: list[str] = []
    function = None
    flags: tuple[str, ...] = ()
    lines = text.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            body_start = i
            break
        key, value = match.groups()
        if key == "include":
            if value in includes:
                raise LibraryError(f"{path}: includes {value} twice")
            includes.append(value)
        elif key == "function":
            function = value
        elif key == "flags":
            flags = tuple(f.strip() for f in value.split(",") if f.strip())
        else:
            raise LibraryError(f"{path}: unknown directive --! {key}")
    else:
        body_start = len(lines)
    code = "\n".join(lines[body_start:]).strip("\n") + "\n"
    return LuaFile(path, tuple(includes), function, flags, code)


def _read(root: Traversable, path: str) -> LuaFile:
    node = root
    for part in path.split("/"):  # one segment at a time: what every Traversable supports
        node = node.joinpath(part)
    if not node.is_file():
        raise LibraryError(f"missing Lua include: {path}")
    return parse(path, node.read_text(encoding="utf-8"))


def resolve_helpers(root: Traversable, command: LuaFile, read: dict[str, LuaFile] | None = None) -> list[LuaFile]:
    """The helpers a command needs, each once, dependencies first (``read``: helpers already read,
    by path, shared by the commands of one build)."""
    ordered: list[LuaFile] = []
    done: set[str] = set()
    read = {} if read is None else read

    def visit(path: str, chain: tuple[str, ...]) -> None:
        if path in chain:
            raise LibraryError("circular Lua include: " + " -> ".join((*chain, path)))
        if path in done:
            return
        helper = read.get(path) or read.setdefault(path, _read(root, path))
        for inner in helper.includes:
            visit(inner, (*chain, path))
        done.add(path)
        ordered.append(helper)

    for path in command.includes:
        visit(path, (command.path,))
    return ordered


def build(root: Traversable, package_version: str) -> Library:
    """Bundle every command file directly under ``root`` (helpers live in ``root/lib``)."""
    commands = sorted(
        (_read(root, node.name) for node in root.iterdir() if node.name.endswith(".lua")),
        key=lambda f: f.path,
    )
    commands = [c for c in commands if c.function]
    if not commands:
        raise LibraryError("no Lua command files found")
    names = [c.function for c in commands if c.function]
    if len(set(names)) != len(names):
        raise LibraryError(f"two Lua files register the same function: {sorted(names)}")

    helpers: list[LuaFile] = []
    seen: set[str] = set()
    per_command: dict[str, list[LuaFile]] = {}
    read: dict[str, LuaFile] = {}
    for command in commands:
        needed = resolve_helpers(root, command, read)
        per_command[command.path] = needed
        for helper in needed:
            if helper.path not in seen:
                seen.add(helper.path)
                helpers.append(helper)

    digest = hashlib.sha1()
    for part in (*helpers, *commands):
        digest.update(part.path.encode() + b"\0" + part.code.encode())
    version = f"{package_version}+{digest.hexdigest()[:12]}"

    scripts: dict[str, str] = {}
    chunks = [f"#!lua name={LIBRARY_NAME}\n"]
    chunks += [h.code for h in helpers]
    for command in commands:
        assert command.function is not None
        code = command.code.replace(VERSION_PLACEHOLDER, version)
        shebang = f"#!lua flags={','.join(command.flags)}\n" if command.flags else ""
        if all(h.path != REGISTRY_HELPER for h in per_command[command.path]):
            scripts[command.function] = shebang + "".join(h.code for h in per_command[command.path]) + code
        flags = ", ".join(f"'{f}'" for f in command.flags)
        chunks.append(
            f"local function {command.function}(KEYS, ARGV)\n{code}end\n"
            f"redis.register_function{{function_name = '{command.function}', "
            f"callback = {command.function}, flags = {{{flags}}}}}\n"
        )
    template = "\n".join(chunks)
    return Library(
        version=version,
        source=template.replace(REGISTRY_PLACEHOLDER, EMPTY_REGISTRY),
        template=template,
        scripts=scripts,
        shas={name: hashlib.sha1(s.encode()).hexdigest() for name, s in scripts.items()},
        readonly=frozenset(c.function for c in commands if c.function and "no-writes" in c.flags),
    )


def lua_root() -> Traversable:
    """The ``lua/`` folder: beside the package in a source checkout, else installed as
    ``fsredis.lua`` (the checkout wins, so it never runs another installation's Lua)."""
    checkout = Path(__file__).resolve().parent.parent / "lua"
    if (checkout / "fs_write.lua").is_file():
        return checkout
    return resources.files("fsredis.lua")


@functools.cache
def bundled() -> Library:
    """The library built from the Lua files installed with this package."""
    from fsredis import __version__

    return build(lua_root(), __version__)
