"""A load generator for the window, in its own process: CLIENTS connections at once, each
sending one GET after another (a new connection per request: gunicorn's sync workers close
them), until REQUESTS are done or SECONDS have passed. Prints JSON: count, errors, requests/s,
p50 and p99 in ms.

    python -m benchmarks.web_load BASE_URL PATHS_FILE CLIENTS REQUESTS SECONDS
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from urllib.parse import urlsplit


async def one(host: str, port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode("ascii"))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            await reader.read()
        else:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def run(base: str, paths: list[str], clients: int, requests: int,
              seconds: float) -> dict[str, float]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    left = [requests]
    deadline = time.perf_counter() + seconds
    rng = random.Random(7)

    async def client() -> None:
        nonlocal errors
        while left[0] > 0 and time.perf_counter() < deadline:
            left[0] -= 1
            path = paths[rng.randrange(len(paths))]
            started = time.perf_counter()
            try:
                status = await one(host, port, path)
            except (OSError, asyncio.IncompleteReadError):
                status = 0
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"count": len(ordered), "errors": errors, "requests_per_s": len(ordered) / elapsed,
            "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def main() -> None:
    base, paths_file, clients, requests, seconds = sys.argv[1:6]
    with open(paths_file, encoding="utf-8") as file:
        paths = [line.strip() for line in file if line.strip()]
    print(json.dumps(asyncio.run(run(base, paths, int(clients), int(requests),
                                     float(seconds)))))


if __name__ == "__main__":
    main()
