"""Raw HTTP/1.1 over a socket: bytes no HTTP client library would send (non-UTF-8 headers,
bodies that stall), and the server's answer as it comes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, within: float = 10) -> Answer:
    async with asyncio.timeout(within):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await reader.readline()).strip(), 16):
                body += await reader.readexactly(size)
                await reader.readline()
            await reader.readline()
        else:
            body = await reader.read()
    return Answer(status, headers, body)


async def request(host: str, port: int, head: bytes, body: bytes = b"") -> Answer:
    """Send ``head`` (request line and headers, without the blank line) and ``body``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.rstrip(b"\r\n") + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()
