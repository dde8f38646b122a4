"""The client address behind a load balancer: sign-in throttling per client, not per balancer.

Behind a load balancer every request's peer is the balancer. Counted by peer, ten failed
sign-ins by anyone lock every staff member out for the window. With ECOGRAM_TRUSTED_PROXIES the
client is the nearest address X-Forwarded-For names that is not a trusted proxy; without it the
header is ignored, so a client cannot choose the address it is counted under.
"""

from __future__ import annotations

import ipaddress

import pytest

from ecogram.app import create_app
from ecogram.auth.identity import forwarded_client
from ecogram.settings import Settings, SettingsError

LOGIN = "/api/v1/auth/login"


def _nets(*items: str):
    return tuple(ipaddress.ip_network(item) for item in items)


@pytest.mark.parametrize(
    ("peer", "header", "trusted", "client"),
    [
        # No trusted proxies: the peer, whatever the header says.
        ("203.0.113.9", ["198.51.100.1"], (), "203.0.113.9"),
        # The peer is not trusted: its header is not believed.
        ("203.0.113.9", ["198.51.100.1"], ("10.0.0.0/8",), "203.0.113.9"),
        # One trusted balancer: the address it appended.
        ("10.0.0.2", ["198.51.100.1"], ("10.0.0.0/8",), "198.51.100.1"),
        # What a client wrote itself stays to the left of what the balancer appended.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], ("10.0.0.0/8",), "198.51.100.1"),
        # A CDN hop and a balancer, both trusted: the address before them.
        ("10.0.0.2", ["198.51.100.1, 192.0.2.10"], ("10.0.0.0/8", "192.0.2.0/24"),
         "198.51.100.1"),
        # Several header lines read as one list, in order.
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], ("10.0.0.0/8",), "198.51.100.1"),
        # IPv6, and an IPv4 peer written as IPv4-mapped IPv6.
        ("::ffff:10.0.0.2", ["2001:db8::7"], ("10.0.0.0/8",), "2001:db8::7"),
        # Only trusted addresses: the farthest one.
        ("10.0.0.2", ["10.0.0.1"], ("10.0.0.0/8",), "10.0.0.1"),
        # Garbage where an address should be: the nearest trusted hop, never the garbage.
        ("10.0.0.2", ["unknown"], ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.1, x, 10.0.0.1"], ("10.0.0.0/8",), "10.0.0.1"),
        # No header from a trusted peer: the peer.
        ("10.0.0.2", [], ("10.0.0.0/8",), "10.0.0.2"),
        (None, ["198.51.100.1"], ("10.0.0.0/8",), "unknown"),
    ],
)
def test_the_client_is_the_nearest_untrusted_address(peer, header, trusted, client):
    assert forwarded_client(peer, header, _nets(*trusted)) == client


def test_the_setting_takes_addresses_and_networks():
    settings = Settings.from_env({"ECOGRAM_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"})
    assert settings.trusted_proxies == _nets("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32")
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="ECOGRAM_TRUSTED_PROXIES"):
        Settings.from_env({"ECOGRAM_TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"})


async def _login(client, email: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = await client.post(LOGIN, json={"email": email, "password": "wrong password!"},
                                 headers=headers)
    return response.status


async def test_without_trusted_proxies_a_forged_header_does_not_escape_the_limit(
    aiohttp_client, settings
):
    client = await aiohttp_client(create_app(settings.replace(login_max_failures=3)))
    for i in range(3):
        assert await _login(client, f"u{i}@example.com", f"203.0.113.{i}") == 401
    # Each attempt named another address; all came from this one peer.
    assert await _login(client, "u9@example.com", "203.0.113.99") == 429


async def test_behind_a_trusted_balancer_one_clients_failures_do_not_lock_out_another(
    aiohttp_client, settings
):
    trusted = Settings.from_env({"ECOGRAM_TRUSTED_PROXIES": "127.0.0.1"}).trusted_proxies
    client = await aiohttp_client(
        create_app(settings.replace(login_max_failures=3, trusted_proxies=trusted)))
    for i in range(3):
        assert await _login(client, f"u{i}@example.com", "203.0.113.7") == 401
    assert await _login(client, "u9@example.com", "203.0.113.7") == 429
    # Another client behind the same balancer signs in as usual.
    assert await _login(client, "u10@example.com", "203.0.113.8") == 401
    # The first client cannot pose as someone else: the balancer appends the real address.
    assert await _login(client, "u11@example.com", "198.51.100.1, 203.0.113.7") == 429
