"""Webhook throughput and latency: safetybot against a bare WeRoBot echo bot, same load, same run.

Posts signed WeChat text messages ("帮助") with unique MsgIds from a pool of users over keep-alive
HTTP/1.1 connections (16 and 64 at once, after a warm-up) and prints requests/s, p50 and p99 for
each server, and safetybot's throughput as a ratio of WeRoBot's. safetybot runs as
``safetybot serve`` on a fresh SQLite database: every message is logged raw, claimed against
retries, handled and answered.

    .venv/bin/python benchmarks/webhook.py [--requests 10000] [--levels 16,64] [--mode plain|aes]
                                           [--client wrk|python] [--workers 1,2]

The load comes from wrk (``apt-get install wrk``) driven by ``benchmarks/webhook.lua`` when it is
installed and the mode is plain: a C load generator leaves the two cores to the servers. Without
wrk, or in safe mode (every body encrypted and signed on its own), it is plain asyncio streams,
which cost about as much CPU per request as the server under test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "benchtoken"
APP_ID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

WEROBOT_ECHO = """
import sys
from werobot import WeRoBot
robot = WeRoBot(token=sys.argv[1])
robot.config["HOST"] = "127.0.0.1"
robot.config["PORT"] = int(sys.argv[2])

@robot.text
def echo(message):
    return message.content

robot.run(server=sys.argv[3], enable_pretty_logging=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def text_xml(openid: str, msg_id: int, content: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_benchmark]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def build_requests(port: int, count: int, users: int, mode: str, first_id: int) -> list[bytes]:
    """Raw HTTP requests, each a signed callback with a unique MsgId."""
    crypto = None
    if mode == "aes":
        from wechatpy.crypto import WeChatCrypto

        crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    requests = []
    for i in range(count):
        timestamp, nonce = str(int(time.time())), f"n{i}"
        params = {"signature": sha1(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "openid": f"o_bench_{i % users}"}
        body = text_xml(f"o_bench_{i % users}", first_id + i, "帮助")
        if crypto is not None:
            from defusedxml.ElementTree import fromstring

            wrapped = fromstring(crypto.encrypt_message(body, nonce, timestamp))
            encrypt = wrapped.findtext("Encrypt") or ""
            params.update(encrypt_type="aes", msg_signature=sha1(TOKEN, timestamp, nonce, encrypt))
            body = f"<xml><ToUserName><![CDATA[gh_benchmark]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        data = body.encode()
        head = (
            f"POST /wechat?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        requests.append(head.encode() + data)
    return requests


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server keeps the connection open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    version, status = status_line.split()[:2]
    length, keep_alive = None, version == b"HTTP/1.1"
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep_alive = value.strip().lower() == b"keep-alive"
    if length is None:
        await reader.read()
        keep_alive = False
    else:
        await reader.readexactly(length)
    return int(status), keep_alive


async def worker(port: int, queue: list[bytes], latencies: list[float], errors: list[int]) -> None:
    reader = writer = None
    while queue:
        request = queue.pop()
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(request)
        try:
            status, keep_alive = await read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            reader = writer = None
            queue.append(request)
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200:
            errors.append(status)
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


@dataclass
class Figures:
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float = 0.0
    load_cpu_us: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def load(port: int, requests: list[bytes], connections: int) -> Figures:
    queue = list(reversed(requests))
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(worker(port, queue, latencies, errors) for _ in range(connections)))
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Figures(connections, len(latencies), seconds, cuts[49] * 1000, cuts[98] * 1000, len(errors))


def load_with_wrk(port: int, count: int, users: int, connections: int, first_id: int) -> Figures:
    """``count`` signed text messages through wrk and benchmarks/webhook.lua (plaintext mode only)."""
    timestamp, nonce = str(int(time.time())), "wrkbench"
    query = urlencode({"signature": sha1(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce})
    command = ["wrk", "-t1", f"-c{connections}", "-d600s", "--timeout", "30s", "-s", str(ROOT / "benchmarks" / "webhook.lua"),
               f"http://127.0.0.1:{port}", "--", query, str(users), str(first_id), str(count)]
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert wrk.stdout is not None
    figures = None
    for line in wrk.stdout:
        if line == "done\n":
            # wrk runs for its whole -d unless interrupted; SIGINT makes it report at once.
            wrk.send_signal(signal.SIGINT)
        elif line.startswith("figures "):
            answered, micros, p50, p99, errors = (int(x) for x in line.split()[1:])
            figures = Figures(connections, answered, micros / 1e6, p50 / 1000, p99 / 1000, errors)
    if wrk.wait() != 0 or figures is None:
        raise RuntimeError(f"wrk failed ({wrk.returncode})")
    return figures


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by process ``pid`` and its children (the workers)."""
    pids = [pid] + [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, timeout: float = 10.0) -> None:
    """Wait until the server has finished what the previous level left in flight (the load
    generator stops with requests unanswered), so that each level is measured from an idle server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.2)
        if cpu_seconds(pid) - before < 0.02:
            return


def load_cpu_seconds() -> float:
    """CPU time of this process and its finished children (wrk): the load generator's."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def run_levels(name: str, server: subprocess.Popen[bytes], port: int, args: argparse.Namespace, mode: str,
               id_base: int) -> dict[int, Figures]:
    results = {}
    with_wrk = args.client == "wrk" and mode == "plain"
    if with_wrk:
        load_with_wrk(port, args.warmup, args.users, 8, id_base)
    else:
        asyncio.run(load(port, build_requests(port, args.warmup, args.users, mode, id_base), 8))
    for n, connections in enumerate(args.levels):
        first_id = id_base + (n + 1) * 10_000_000
        wait_until_idle(server.pid)
        server_cpu, load_cpu = cpu_seconds(server.pid), load_cpu_seconds()
        if with_wrk:
            figures = load_with_wrk(port, args.requests, args.users, connections, first_id)
        else:
            requests = build_requests(port, args.requests, args.users, mode, first_id)
            figures = asyncio.run(load(port, requests, connections))
        figures.server_cpu_us = (cpu_seconds(server.pid) - server_cpu) * 1e6 / figures.requests
        figures.load_cpu_us = (load_cpu_seconds() - load_cpu) * 1e6 / figures.requests
        results[connections] = figures
        print(f"{name:<28} {connections:>3} conns  {figures.rps:8.0f} req/s  p50 {figures.p50_ms:6.1f} ms  "
              f"p99 {figures.p99_ms:6.1f} ms  errors {figures.errors}  CPU a request: server "
              f"{figures.server_cpu_us:5.0f} us, load {figures.load_cpu_us:4.0f} us", flush=True)
    return results


def start_safetybot(workdir: Path, mode: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": "bench-secret",
        "ADMIN_TOKEN": "bench-admin-token-0123456789",
        "WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        "DATABASE_URL": f"sqlite:///{workdir / f'bench-{workers}.db'}",
        "MEDIA_DIR": str(workdir / "media"),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "WEB_WORKERS": str(workers),
        # Each benchmark user sends far more than a person could in a minute; every message is to be handled.
        "MESSAGES_PER_MINUTE": "0",
    }
    if mode == "aes":
        env["WECHAT_ENCODING_AES_KEY"] = AES_KEY
    subprocess.run([BIN / "safetybot", "--env-file", os.devnull, "db", "upgrade"], env=env, check=True,
                   cwd=workdir, stdout=subprocess.DEVNULL)
    process = subprocess.Popen([BIN / "safetybot", "--env-file", os.devnull, "serve"], env=env, cwd=workdir)
    wait_for_port(port, process)
    return process, port


def start_werobot(workdir: Path, server: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    script = workdir / "werobot_echo.py"
    script.write_text(WEROBOT_ECHO)
    process = subprocess.Popen([sys.executable, str(script), TOKEN, str(port), server], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10000, help="requests per concurrency level")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--users", type=int, default=200, help="size of the pool of sending users")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--mode", choices=["plain", "aes"], default="plain", help="safetybot's message mode")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2],
                        help="safetybot web worker processes to try (WEB_WORKERS)")
    # WeRoBot's robot.run() default is bottle's single-threaded wsgiref server; waitress is the
    # multi-threaded server bottle recommends for production, so the baseline is not a straw man.
    parser.add_argument("--werobot-servers", type=lambda s: [name for name in s.split(",") if name], default=["waitress"],
                        help="bottle servers to run WeRoBot under (waitress, wsgiref; empty for none)")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python",
                        help="load generator: wrk (plain mode) or asyncio streams")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        client = "wrk" if args.client == "wrk" and args.mode == "plain" else "asyncio streams"
        print(f"{args.requests} signed text messages per level, {args.users} users, after {args.warmup} warm-up; "
              f"{os.cpu_count()} cores; load from {client}", flush=True)
        ours: dict[int, dict[int, Figures]] = {}
        for workers in args.workers:
            bot, bot_port = start_safetybot(workdir, args.mode, workers)
            try:
                ours[workers] = run_levels(f"safetybot ({args.mode}, SQLite, {workers}w)", bot, bot_port, args,
                                           args.mode, 1_000_000_000 + workers * 100_000_000)
            finally:
                bot.terminate()
                bot.wait()
        baselines = {}
        for server in args.werobot_servers:
            echo, echo_port = start_werobot(workdir, server)
            try:
                baselines[server] = run_levels(f"WeRoBot echo ({server})", echo, echo_port, args, "plain",
                                               2_000_000_000 + len(baselines) * 100_000_000)
            finally:
                echo.terminate()
                echo.wait()
    for workers, figures in ours.items():
        for server, theirs in baselines.items():
            for connections in args.levels:
                ratio = figures[connections].rps / theirs[connections].rps
                print(f"ratio safetybot ({workers}w) / WeRoBot ({server}) at {connections} conns: {ratio:.2f}x "
                      f"(safetybot p99 {figures[connections].p99_ms:.1f} ms)")


if __name__ == "__main__":
    main()
