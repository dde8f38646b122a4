import asyncio
import threading

import pytest
from argon2 import PasswordHasher, Type

from ecogram.auth import passwords
from ecogram.errors import AppError


async def test_hashes_are_argon2id_at_or_above_the_owasp_floor():
    stored = await passwords.hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$v=19$")
    params = dict(item.split("=") for item in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024
    assert int(params["t"]) >= 2
    assert int(params["p"]) >= 1
    assert "a long enough passphrase" not in stored


async def test_verify_accepts_the_password_and_refuses_others():
    stored = await passwords.hash_password("a long enough passphrase")
    assert await passwords.verify_password(stored, "a long enough passphrase")
    assert not await passwords.verify_password(stored, "a long enough passphrasE")
    assert not await passwords.verify_password("not a hash", "a long enough passphrase")


async def test_hashing_and_verifying_run_off_the_event_loop(monkeypatch):
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = passwords.HASHER

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def hash(self, *args, **kwargs):
            seen.append(threading.get_ident())
            return real.hash(*args, **kwargs)

        def verify(self, *args, **kwargs):
            seen.append(threading.get_ident())
            return real.verify(*args, **kwargs)

    monkeypatch.setattr(passwords, "HASHER", Spy())
    monkeypatch.setattr(passwords, "_dummy_hash", None)
    stored = await passwords.hash_password("a long enough passphrase")
    await passwords.verify_password(stored, "a long enough passphrase")
    await passwords.verify_dummy("whatever it is")
    assert len(seen) == 4  # hash, verify, the dummy's hash, the dummy's verify
    assert loop_thread not in seen


async def test_the_loop_keeps_answering_while_passwords_hash():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(passwords.hash_password(f"passphrase number {i}") for i in range(4)))
    task.cancel()
    assert ticks > 0


def test_weaker_or_other_parameters_need_a_rehash():
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("x" * 12)
    assert passwords.needs_rehash(old)
    assert not passwords.needs_rehash(passwords.HASHER.hash("x" * 12))


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "min_length"),
        ("123456789", "min_length"),
        ("someone@example.com", "not_email"),
        ("  SOMEONE@example.com ", "not_email"),
        ("x" * 1025, "max_length"),
    ],
)
def test_password_rules(password, rule):
    with pytest.raises(AppError) as caught:
        passwords.check_password_rules(password, "someone@example.com")
    assert caught.value.status == 422
    assert caught.value.details["rule"] == rule
    assert password not in repr(caught.value.as_dict())


def test_a_ten_character_password_is_enough():
    assert passwords.check_password_rules("0123456789", "a@example.com") == "0123456789"
