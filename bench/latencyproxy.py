#!/usr/bin/env python3
"""A TCP proxy that adds a round-trip time, for the benchmark (stdlib only).

    latencyproxy.py --upstream HOST:PORT --rtt-ms 10 [--port 0]

Listens on 127.0.0.1 (port 0: a free one), prints `listening 127.0.0.1:PORT`
once it accepts connections, and forwards every connection to the upstream
unchanged (TLS passes through: the client still talks to the API server).
Every chunk is delivered RTT/2 after it was read, in each direction, in
order: one request and its answer take one extra RTT, a TLS handshake a few.
Runs until it is killed.
"""

import argparse
import asyncio


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk `delay` seconds late."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait((loop.time() + delay, None))
    try:
        await sender
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def serve(host, port, delay, client_reader, client_writer):
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, up_writer, delay),
        pump(up_reader, client_writer, delay),
    )
    for w in (up_writer, client_writer):
        w.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT")
    p.add_argument("--rtt-ms", type=float, required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    delay = args.rtt_ms / 2000.0
    server = await asyncio.start_server(
        lambda r, w: serve(host, int(port), delay, r, w), "127.0.0.1", args.port, backlog=1024
    )
    addr = server.sockets[0].getsockname()
    print(f"listening {addr[0]}:{addr[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
