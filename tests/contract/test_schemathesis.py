"""The API contract, tested by a client no one here wrote.

Schemathesis reads only ``GET /api/openapi.json`` and drives a live server with an admin token:
all of its checks, all of its phases (examples, coverage, fuzzing, stateful). Any failure fails
the test, with schemathesis' own report (and a curl line to reproduce each one) in the message.

The operations that would end the run's own session — logging its token out, changing its
password, changing its own role — are fuzzed in runs of their own, each with the token of a user
of its own (an admin for the role changes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.catalog.photos import make_photo
from tests.views.test_openapi import OPENAPI_PATH, LiveServer

CONFIG = Path(__file__).with_name("schemathesis.toml")  # the one allowance, and why
# The CI budget decides: at least 25 examples per operation (issue 16).
EXAMPLES = int(os.environ.get("ECOGRAM_CONTRACT_EXAMPLES", "25"))
SESSION_ENDING = ("auth_logout", "auth_password", "users_update")
ADMIN = {"email": "fuzz@example.com", "name": "Fuzz Admin",
         "password": "correct horse battery staple"}


SEED = int(os.environ.get("ECOGRAM_CONTRACT_SEED", "1"))  # another seed finds other cases


def _schemathesis(base: str, token: str, *selection: str, seed: int = SEED) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{base}{OPENAPI_PATH}",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES), "--seed", str(seed), "--workers", "1",
        "--request-timeout", "30", "--suppress-health-check", "all",
        "--no-color", "-H", f"Authorization: Bearer {token}", *selection,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    return done.returncode, done.stdout + done.stderr


def _seed(base: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    assert http.post(f"{base}/api/v1/auth/register", json=ADMIN).status_code == 201
    token = http.post(f"{base}/api/v1/auth/login", json=ADMIN).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # Something to find: photos of two products, one approved.
    for code, seed in (("FUZZ-1", 1), ("FUZZ-2", 3)):
        response = http.post(f"{base}/api/v1/images", headers=headers,
                             files=[("file", (f"{seed}.jpg", make_photo(seed))),
                                    ("file", (f"{seed + 1}.jpg", make_photo(seed + 1)))],
                             data={"code": code})
        assert response.status_code == 201, response.text
    assert http.post(f"{base}/api/v1/images/1/approve", headers=headers).status_code == 200
    return http, token


@pytest.mark.timeout(1800)
def test_schemathesis_all_checks_all_phases(settings):
    with LiveServer(settings.replace(min_side=100)) as base:
        http, token = _seed(base)
        # Their own tokens first: the main run's failed logins throttle this client address.
        own_tokens = []
        for index in range(len(SESSION_ENDING)):
            user = {"email": f"own{index}@example.com", "name": f"Own {index}",
                    "password": "another horse battery staple"}
            created = http.post(f"{base}/api/v1/auth/register", json=user)
            assert created.status_code == 201
            if SESSION_ENDING[index] == "users_update":
                promoted = http.patch(f"{base}/api/v1/users/{created.json()['id']}",
                                      json={"role": "admin"},
                                      headers={"Authorization": f"Bearer {token}"})
                assert promoted.status_code == 200, promoted.text
            own_tokens.append(http.post(f"{base}/api/v1/auth/login",
                                        json=user).json()["access_token"])
        excluded = [arg for name in SESSION_ENDING for arg in ("--exclude-operation-id", name)]
        code, report = _schemathesis(base, token, *excluded)
        print(report)  # the phases' tallies, for -s
        # Every phase ran something (the examples come from the models' Meta(examples=...)).
        for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
            assert f"{phase} (in" in report and "passed" in report.split(phase, 1)[1][:300], (
                phase, report)
        # The admin token still works: the run did not lock itself out half-way.
        me = http.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        failures = [report] if code else []
        for name, own in zip(SESSION_ENDING, own_tokens, strict=True):
            code, report = _schemathesis(base, own, "--include-operation-id", name)
            if code:
                failures.append(report)
    assert not failures, "\n\n".join(failures)
