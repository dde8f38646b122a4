"""What a person sees on the command line: one sentence for an ordinary mistake, exit status 2,
no traceback; no machine lines or library chatter on a person's commands. Each runs the real
`python -m ecogram` in a subprocess, with standard input not a terminal (as in a script)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.catalog.photos import make_photo
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent


def ecogram(*args: str, env: dict[str, str | None] | None = None, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m ecogram ARGS`: ``env`` on a clean environment (None unsets a name)."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ECOGRAM_") and k not in ("REDIS_URL", "DATABASE_URL")}
    environ.update({"PYTHONPATH": str(ROOT), **(env or {})})
    environ = {k: v for k, v in environ.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "ecogram", *args], env=environ, cwd=ROOT, text=True,
        capture_output=True, timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
    )


def assert_one_sentence(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecogram: "), result.stderr
    for word in words:
        assert word in lines[0], result.stderr


def assert_usage_error(result: subprocess.CompletedProcess, usage: str, *words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"usage: {usage} "), result.stderr
    error = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in error, result.stderr


def test_an_unknown_option_before_the_command_is_named():
    result = ecogram("--bogus")
    assert_usage_error(result, "ecogram", "--bogus")
    assert "required" not in result.stderr


def test_an_unknown_option_of_a_command_shows_that_commands_usage():
    result = ecogram("serve", "--prot", "1")
    assert_usage_error(result, "ecogram serve", "--prot 1")


@pytest.mark.parametrize(("args", "words"), [
    (("serve", "--port", "http"), ("--port", "'http' is not a port number")),
    (("serve", "--workers", "0"), ("--workers", "'0' is not a whole number above zero")),
])
def test_bad_option_values_are_told(args, words):
    assert_usage_error(ecogram(*args), "ecogram serve", *words)


def test_an_invalid_setting_is_one_sentence():
    result = ecogram("migrate", env={"ECOGRAM_MIN_SIDE": "abc"})
    assert_one_sentence(result, "ECOGRAM_MIN_SIDE must be a whole number (not 'abc')")
    assert "invalid literal" not in result.stderr


def test_a_port_in_use_is_one_sentence():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = ecogram("serve", "--port", str(port), timeout=60)
    assert_one_sentence(result, f"127.0.0.1:{port} is already in use", "--port")
    assert result.stdout == ""


def test_create_user_without_a_terminal_is_one_sentence():
    result = ecogram("create-user", "--email", "a@example.com", "--name", "A", "--role", "admin")
    assert_one_sentence(result, "no terminal", "--password-stdin")


@pytest.mark.parametrize("command", [
    (), ("serve",), ("migrate",), ("create-user",), ("import",), ("demo",), ("export",),
    ("sign-url",),
])
def test_help_has_no_markup(command):
    result = ecogram(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ecogram")
    assert "`" not in result.stdout and ":ref:" not in result.stdout


# --- a person's commands are quiet -----------------------------------------------------------


@pytest.fixture
def db_env(clean_db, tmp_path) -> dict[str, str]:
    async def add_user() -> None:
        conn = await asyncpg.connect(clean_db)
        try:
            await conn.execute("INSERT INTO users (email, name, password_hash, role) VALUES "
                               "('imp@example.com', 'Ida Importer', 'x', 'importer')")
        finally:
            await conn.close()

    asyncio.run(add_user())
    return {"DATABASE_URL": clean_db, "ECOGRAM_SECRET_KEY": TEST_SECRET,
            "ECOGRAM_DATA_DIR": str(tmp_path / "data"), "ECOGRAM_MIN_SIDE": "100"}


def assert_quiet(stderr: str) -> None:
    """No JSON line, no libvips line, no warning of a library in a person's terminal."""
    for line in stderr.splitlines():
        assert not line.lstrip().startswith("{"), stderr
        assert "VIPS" not in line and "Warning" not in line, stderr


def test_import_shows_its_progress_bar_and_nothing_else(db_env, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(3):
        (folder / f"SKU-{n}.jpg").write_bytes(make_photo(n))
    (folder / "SKU-9.jpg").write_bytes(make_photo(9)[:2000])  # cut off: libvips warns
    result = ecogram("import", str(folder), "--as", "imp@example.com", env=db_env)
    assert result.returncode == 1, result.stderr  # the broken one is rejected
    assert "3 accepted, 0 duplicate, 1 rejected" in result.stdout
    assert "4/4" in result.stderr
    assert_quiet(result.stderr)


def test_export_says_only_what_it_exported(db_env):
    result = ecogram("export", "--format", "json", env=db_env)
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert_quiet(result.stderr)  # no embedded-database or migration line: only its own words
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_demo_ends_saying_what_to_do_next_and_the_first_account_is_admin(db_env):
    result = ecogram("demo", env={**db_env, "ECOGRAM_PORT": "8123"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_quiet(result.stderr)
    last = result.stdout.strip().splitlines()[-1]
    assert "`ecogram serve`" in last and "http://127.0.0.1:8123/register" in last
    assert "first account registered" in last and "admin" in last
    # And it is so: the demo's importer is no admin, the first account registered is.
    from ecogram import db
    from ecogram.catalog import accounts
    from ecogram.settings import Settings

    async def register() -> str:
        pool = await db.create_pool(db_env["DATABASE_URL"], 1, 2)
        try:
            settings = Settings.from_env({}, secret_key=TEST_SECRET)
            user = await accounts.register(pool, settings, email="ada@example.com", name="Ada",
                                           password="a long enough password", client=None)
            return user["role"]
        finally:
            await pool.close()

    assert asyncio.run(register()) == "admin"
    # Run again, with an admin now: sign in instead.
    again = ecogram("demo", env={**db_env, "ECOGRAM_PORT": "8123"}, timeout=300)
    assert "http://127.0.0.1:8123/login" in again.stdout.strip().splitlines()[-1]


def test_the_embedded_database_says_nothing_on_a_persons_command(tmp_path):
    # No DATABASE_URL: pgserver's PostgreSQL in the data directory; no XDG_RUNTIME_DIR, as in a
    # container or over ssh, where it used to warn on every command.
    result = ecogram("migrate", env={"ECOGRAM_DATA_DIR": str(tmp_path / "data"),
                                     "XDG_RUNTIME_DIR": None}, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied migrations")
    assert result.stderr == "", result.stderr
