"""The Lua bundler: one source, two shapes; loud on missing, repeated or circular includes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fsredis.errors import LibraryError
from fsredis.library import build, bundled, parse


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_helpers_are_emitted_once_dependencies_first(tmp_path) -> None:
    root = write(tmp_path, {
        "lib/a.lua": "local function a() return 1 end\n",
        "lib/b.lua": "--! include: lib/a.lua\nlocal function b() return a() + 1 end\n",
        "lib/c.lua": "--! include: lib/a.lua\nlocal function c() return a() + 2 end\n",
        "one.lua": "--! function: fs_one\n--! include: lib/b.lua\n--! include: lib/c.lua\nreturn b() + c()\n",
        "two.lua": "--! function: fs_two\n--! flags: no-writes\n--! include: lib/a.lua\nreturn a()\n",
    })
    library = build(root, "9.9")
    assert library.source.startswith("#!lua name=fsredis\n")
    assert library.source.count("local function a()") == 1
    assert library.source.index("local function a()") < library.source.index("local function b()")
    assert "redis.register_function{function_name = 'fs_two', callback = fs_two, flags = {'no-writes'}}" in library.source
    assert library.scripts["fs_one"].count("local function a()") == 1
    assert library.scripts["fs_one"].endswith("return b() + c()\n")
    assert library.scripts["fs_two"].startswith("#!lua flags=no-writes\n")
    assert "local function b()" not in library.scripts["fs_two"]
    assert library.readonly == {"fs_two"}
    assert library.version.startswith("9.9+")


def test_missing_include(tmp_path) -> None:
    root = write(tmp_path, {"one.lua": "--! function: fs_one\n--! include: lib/nope.lua\nreturn 1\n"})
    with pytest.raises(LibraryError, match="missing Lua include: lib/nope.lua"):
        build(root, "1")


def test_repeated_include(tmp_path) -> None:
    root = write(tmp_path, {
        "lib/a.lua": "local function a() end\n",
        "one.lua": "--! function: fs_one\n--! include: lib/a.lua\n--! include: lib/a.lua\nreturn 1\n",
    })
    with pytest.raises(LibraryError, match="includes lib/a.lua twice"):
        build(root, "1")


def test_circular_include(tmp_path) -> None:
    root = write(tmp_path, {
        "lib/a.lua": "--! include: lib/b.lua\nlocal function a() end\n",
        "lib/b.lua": "--! include: lib/a.lua\nlocal function b() end\n",
        "one.lua": "--! function: fs_one\n--! include: lib/a.lua\nreturn 1\n",
    })
    with pytest.raises(LibraryError, match="circular Lua include: one.lua -> lib/a.lua -> lib/b.lua -> lib/a.lua"):
        build(root, "1")


def test_duplicate_function_names_and_unknown_directives(tmp_path) -> None:
    write(tmp_path, {"one.lua": "--! function: fs_x\nreturn 1\n", "two.lua": "--! function: fs_x\nreturn 2\n"})
    with pytest.raises(LibraryError, match="same function"):
        build(tmp_path, "1")
    with pytest.raises(LibraryError, match="unknown directive"):
        parse("x.lua", "--! frobnicate: yes\nreturn 1\n")


def test_the_version_changes_with_the_source(tmp_path) -> None:
    write(tmp_path, {"one.lua": "--! function: fs_version\nreturn '@LIBRARY_VERSION@'\n"})
    first = build(tmp_path, "1")
    assert f"return '{first.version}'" in first.scripts["fs_version"]
    write(tmp_path, {"one.lua": "--! function: fs_version\n-- changed\nreturn '@LIBRARY_VERSION@'\n"})
    assert build(tmp_path, "1").version != first.version


def test_the_shipped_library() -> None:
    library = bundled()
    # The writes that check the registry exist only as functions (they are always sent by FCALL).
    assert set(library.scripts) == {
        "fs_get", "fs_get_batch", "fs_get_many", "fs_get_as_of", "fs_get_history", "fs_lineage", "fs_delete", "fs_version",
        "fs_registry_put", "fs_migrate", "fs_show",
    }
    for name in ("fs_write", "fs_write_batch", "fs_rollback", "fs_registry_version", "fs_put", *library.scripts):
        assert f"function_name = '{name}'" in library.source
    assert library.readonly == {"fs_get", "fs_get_batch", "fs_get_many", "fs_get_as_of", "fs_get_history", "fs_lineage",
                                "fs_version", "fs_registry_version", "fs_show"}
    assert "#!lua flags=no-writes,allow-cross-slot-keys" in library.scripts["fs_get_many"]  # keys of any slot of its node
    assert "@REGISTRY@" in library.template and "@REGISTRY@" not in library.source
    for name, script in library.scripts.items():
        assert "--!" not in script.split("\n", 1)[1], name  # directives are stripped


def test_every_lua_file_has_a_contract_header() -> None:
    root = Path(__file__).resolve().parent.parent / "lua"
    for path in sorted(root.glob("**/*.lua")):
        parsed = parse(path.name, path.read_text())
        code = parsed.code
        assert code.startswith("-- "), f"{path} should open with a comment saying what it does"
        if path.parent == root:
            assert "KEYS[" in code and "Returns" in code, f"{path} lacks its KEYS/ARGV/Returns contract"
            assert parsed.function == path.stem, f"{path} registers {parsed.function}: name the file after it"


@pytest.mark.skipif(not shutil.which("luacheck"), reason="luacheck is not installed (.ci/run installs lua-check)")
def test_bundled_lua_passes_luacheck(tmp_path) -> None:
    """Lint what the server runs: the Functions library and each script, as bundled."""
    library = bundled()
    files = {"library.lua": library.source}
    files.update({f"{name}.lua": script for name, script in library.scripts.items()})
    for name, text in files.items():
        (tmp_path / name).write_text(text.split("\n", 1)[1] if text.startswith("#!") else text)
    result = subprocess.run(
        ["luacheck", "--std", "lua51", "--globals", "redis", "cjson", "cmsgpack", "struct", "bit", "KEYS", "ARGV",
         "--ignore", "212/KEYS", "212/ARGV", "--no-max-line-length", "--codes", "--no-color", *sorted(files)],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout


def test_the_library_builds_from_an_installed_package_layout() -> None:
    """Installed, ``fsredis.lua`` is a namespace package: its root is a MultiplexedPath, which
    joins one path segment at a time. The result must match the checkout's build exactly."""
    try:
        from importlib.resources.readers import MultiplexedPath
    except ImportError:  # Python 3.10
        from importlib.readers import MultiplexedPath  # type: ignore[no-redef]

    root = Path(__file__).resolve().parent.parent / "lua"
    installed = build(MultiplexedPath(str(root)), "1.0")
    assert installed == build(root, "1.0")
