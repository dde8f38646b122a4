"""``ecogram create-user``: an account from the command line, password never echoed."""

from __future__ import annotations

import asyncio
import io

import pytest

from ecogram import cli, db
from ecogram.auth import passwords
from tests.conftest import TEST_SECRET


@pytest.fixture
def cli_env(monkeypatch, clean_db, tmp_path):
    for name in ("REDIS_URL", "ECOGRAM_REGISTRATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("ECOGRAM_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path))
    return clean_db


def fetch(url: str, sql: str, *args):
    async def run():
        conn = await db.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_create_user_reads_the_password_from_stdin(cli_env, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a passphrase from stdin\n"))
    status = cli.main(["create-user", "--email", "rita@example.com", "--name", "Rita",
                       "--role", "reviewer", "--password-stdin"])
    assert status == 0
    out, err = capsys.readouterr()
    assert "rita@example.com" in out and "reviewer" in out
    assert "a passphrase from stdin" not in out + err
    [row] = fetch(cli_env, "SELECT * FROM users")
    assert row["role"] == "reviewer" and row["name"] == "Rita"
    assert asyncio.run(passwords.verify_password(row["password_hash"], "a passphrase from stdin"))
    [entry] = fetch(cli_env, "SELECT * FROM audit_log")
    assert entry["action"] == "user.create" and entry["actor"] == "command line"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_create_user_prompts_twice_without_stdin(cli_env, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter(["prompted passphrase", "prompted passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    status = cli.main(["create-user", "--email", "a@example.com", "--name", "A",
                       "--role", "admin"])
    assert status == 0
    assert fetch(cli_env, "SELECT role FROM users")[0]["role"] == "admin"


def test_create_user_refuses_mismatched_prompts(cli_env, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter(["prompted passphrase", "another passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli.main(["create-user", "--email", "a@example.com", "--name", "A",
                     "--role", "admin"]) == 1
    assert fetch(cli_env, "SELECT * FROM users") == []


def test_create_user_without_a_terminal_asks_for_password_stdin(cli_env, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a passphrase nobody asked for\n"))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("prompted"))
    assert cli.main(["create-user", "--email", "a@example.com", "--name", "A",
                     "--role", "admin"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecogram: ") and "--password-stdin" in err and err.count("\n") == 1
    assert fetch(cli_env, "SELECT * FROM users") == []


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--email", "a@example.com", "--name", "A", "--role", "viewer"], "short\n",
         "at least 10"),
        (["--email", "a@example.com", "--name", "A", "--role", "viewer"], "a@example.com\n",
         "e-mail"),
        (["--email", "nope", "--name", "A", "--role", "viewer"], "long enough pass\n",
         "e-mail"),
    ],
)
def test_create_user_refuses_bad_input(cli_env, monkeypatch, capsys, args, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert cli.main(["create-user", *args, "--password-stdin"]) == 1
    err = capsys.readouterr().err
    assert message in err and stdin.strip() not in err.replace("a@example.com", "")
    assert fetch(cli_env, "SELECT * FROM users") == []


def test_create_user_refuses_a_taken_email(cli_env, monkeypatch, capsys):
    for expected in (0, 1):
        monkeypatch.setattr("sys.stdin", io.StringIO("long enough pass\n"))
        assert cli.main(["create-user", "--email", "A@example.com", "--name", "A",
                         "--role", "viewer", "--password-stdin"]) == expected
    assert "already exists" in capsys.readouterr().err


def test_create_user_refuses_an_unknown_role(cli_env):
    with pytest.raises(SystemExit):
        cli.main(["create-user", "--email", "a@example.com", "--name", "A", "--role", "root",
                  "--password-stdin"])
