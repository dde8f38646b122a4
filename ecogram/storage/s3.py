"""The S3-compatible store: objects at ``s3://bucket/prefix/ab/abcdef…`` (aiobotocore).

The endpoint and credentials come from the standard variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), read by botocore itself. Every
call has a deadline (ECOGRAM_STORAGE_TIMEOUT); a store that refuses, times out or answers 5xx
raises ``StoreUnavailable`` (503 ``unavailable``), logged in one line without a trace. The
connection argument of the seam is ignored here: objects are written at once, before the
record that names them commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ecogram.storage import MissingObject, StoreUnavailable

log = logging.getLogger("ecogram.storage")

READS_AT_ONCE = 8  # objects fetched concurrently by get_many


class S3Store:
    def __init__(self, location: str, client: Any, context: Any, timeout: float) -> None:
        self.location = location
        bucket, _, prefix = location[len("s3://"):].partition("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = client
        self._context = context
        self.timeout = timeout

    @classmethod
    async def open(cls, location: str, deadline: float) -> S3Store:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = AioConfig(
            connect_timeout=min(deadline, 5.0),
            read_timeout=deadline,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=32,
            # Self-hosted stores (SeaweedFS, MinIO, Ceph) answer on one host: path-style names.
            s3={"addressing_style": "path" if endpoint else "auto"},
        )
        context = get_session().create_client(
            "s3", endpoint_url=endpoint or None,
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
            config=config,
        )
        client = await context.__aenter__()
        return cls(location, client, context, deadline)

    def name(self, key: str) -> str:
        return f"{self.prefix}{key[:2]}/{key}"

    async def _call(self, op: str, key: str | None, call: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or error.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(key or "") from None
            self._warn(op, error.get("Code") or str(status))
            raise StoreUnavailable() from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            self._warn(op, type(exc).__name__)
            raise StoreUnavailable() from exc

    def _warn(self, op: str, error: str) -> None:
        log.warning(json.dumps({"event": "storage_unavailable", "store": self.location,
                                "op": op, "error": error}))

    async def put(self, conn: Any, key: str, data: bytes) -> None:
        await self._call("put", key, lambda: self.client.put_object(
            Bucket=self.bucket, Key=self.name(key), Body=data,
            ContentType="application/octet-stream"))

    async def get(self, conn: Any, key: str) -> bytes:
        async def read() -> bytes:
            answer = await self.client.get_object(Bucket=self.bucket, Key=self.name(key))
            async with answer["Body"] as body:
                return await body.read()

        return await self._call("get", key, read)

    async def get_many(self, conn: Any, keys: list[str]) -> dict[str, bytes]:
        slots = asyncio.Semaphore(READS_AT_ONCE)

        async def one(key: str) -> tuple[str, bytes]:
            async with slots:
                return key, await self.get(conn, key)

        return dict(await asyncio.gather(*(one(key) for key in keys)))

    async def delete(self, conn: Any, key: str) -> None:
        await self._call("delete", key, lambda: self.client.delete_object(
            Bucket=self.bucket, Key=self.name(key)))

    async def older_than(self, conn: Any, seconds: float) -> AsyncIterator[str]:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self._call("list", None, lambda extra=extra: self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.prefix, **extra))
            for item in page.get("Contents", []):
                key = item["Key"].rsplit("/", 1)[-1]
                if item["LastModified"] < cutoff and len(key) == 64:
                    yield key
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    async def close(self) -> None:
        try:
            await self._context.__aexit__(None, None, None)
        except Exception:  # closing a client whose loop is ending: nothing left to save
            log.debug("s3 client close failed", exc_info=True)
