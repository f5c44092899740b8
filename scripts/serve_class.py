"""Serve the dashboard to a class: several Streamlit replicas on loopback behind Debian's nginx, sticky by cookie.

    python scripts/serve_class.py [--replicas 2] [--port 8080] [--first-port 8601] [--cache-bytes N]

Each replica is its own `streamlit run app.py` process with its own models and caches, so replicas use the cores
side by side. nginx sends each browser to one replica for good: the first response sets a cookie (`cam_replica`)
whose value picks the replica by consistent hashing, so the page, its websocket, its uploads and its pictures
(kept in that replica's memory) all reach the same process. Open http://<this machine>:PORT; Ctrl-C stops all.
Needs nginx (`apt-get install nginx-light` or `nginx`). The README's "Running it for a class" gives the sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def streamlit_static() -> Path:
    """The folder of Streamlit's front end (the JavaScript and CSS every browser loads once)."""
    import streamlit

    return Path(streamlit.__file__).parent / "static" / "static"


def nginx_config(listen: int, ports: list[int], prefix: Path, address: str = "127.0.0.1") -> str:
    """An nginx.conf that spreads browsers over the replicas on ports and keeps each browser on one of them. nginx
    serves Streamlit's front end itself (compressed, cached by browsers), so that the replicas' Python threads spend
    their time on maps, not on sending the same JavaScript to every newcomer. Its workers run as the user who
    starts it (nginx would otherwise drop root to nobody, who cannot read a Python installed under /root)."""
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format sticky '$remote_addr "$request" $status upstream=$upstream_addr replica=$sticky';
    access_log {prefix}/access.log sticky;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 513m;  # Streamlit refuses more than its limits itself, with its own message
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    map $cookie_cam_replica $sticky {{ '' $request_id; default $cookie_cam_replica; }}
    upstream dashboard {{
        hash $sticky consistent;
{servers}
    }}
    types {{
        text/html html; text/css css; application/javascript js mjs; application/json json map;
        image/png png; image/svg+xml svg; image/x-icon ico; font/woff2 woff2; font/woff woff; font/ttf ttf;
    }}
    default_type application/octet-stream;
    gzip on;
    gzip_types application/javascript text/css application/json image/svg+xml;
    server {{
        listen {address}:{listen};
        location /static/ {{
            alias {streamlit_static()}/;
            expires 7d;
        }}
        location / {{
            proxy_pass http://dashboard;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_read_timeout 1d;
            proxy_buffering off;
            add_header Set-Cookie "cam_replica=$sticky; Path=/; HttpOnly; SameSite=Lax" always;
        }}
    }}
}}
"""


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 90.0) -> None:
    """Return once something listens on port; raise if process exits or seconds pass first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s")


def start_replica(port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:port, its output in log."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Deployment:
    """What serve() started: the URL browsers open, the replicas' processes and ports, nginx and its folder (with
    every log)."""

    url: str
    replicas: list[subprocess.Popen]
    ports: list[int]
    nginx: subprocess.Popen | None
    folder: Path

    def routed(self) -> dict[str, int]:
        """How many requests nginx sent to each replica so far (upstream address → count)."""
        counts: dict[str, int] = {}
        log = self.folder / "access.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            upstream = line.split("upstream=", 1)[1].split()[0] if "upstream=" in line else "-"
            counts[upstream] = counts.get(upstream, 0) + 1
        return counts


@contextlib.contextmanager
def serve(replicas: int, port: int, first_port: int, folder: Path, env: dict[str, str] | None = None,
          address: str = "127.0.0.1") -> Iterator[Deployment]:
    """Start the replicas (and nginx in front of them when there are two or more) and stop them all on exit."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if replicas > 1 and not Path(nginx).exists():
        raise SystemExit("nginx is not installed: apt-get install nginx-light (or nginx)")
    folder.mkdir(parents=True, exist_ok=True)
    ports = [port] if replicas == 1 else [first_port + i for i in range(replicas)]
    for taken in [port, *ports]:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", taken), timeout=1):
            raise SystemExit(f"port {taken} is already in use: stop what listens there or choose other ports")
    logs = [folder / f"replica_{p}.log" for p in ports]
    started: list[subprocess.Popen] = []
    front = None
    try:
        for replica_port, log in zip(ports, logs, strict=True):
            started.append(start_replica(replica_port, log, env))
        for replica_port, process in zip(ports, started, strict=True):
            wait_for_port(replica_port, process)
        if replicas > 1:
            (folder / "nginx.conf").write_text(nginx_config(port, ports, folder, address))
            front = subprocess.Popen([nginx, "-p", str(folder), "-e", str(folder / "error.log"),
                                      "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=open(folder / "nginx.out", "w"))
            wait_for_port(port, front, 30)
        yield Deployment(f"http://127.0.0.1:{port}", started, ports, front, folder)
    finally:
        for process in ([front] if front else []) + started:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="Streamlit processes (about one per 2 cores)")
    parser.add_argument("--port", type=int, default=8080, help="the port browsers open")
    parser.add_argument("--first-port", type=int, default=8601, help="the replicas listen on this port and the next")
    parser.add_argument("--address", default="0.0.0.0", help="where nginx listens (0.0.0.0: every interface)")
    parser.add_argument("--cache-bytes", type=int, default=None, help="CAM_CACHE_BYTES for each replica")
    args = parser.parse_args()
    env = {} if args.cache_bytes is None else {"CAM_CACHE_BYTES": str(args.cache_bytes)}
    folder = Path(tempfile.mkdtemp(prefix="cam-class-"))
    with serve(args.replicas, args.port, args.first_port, folder, env, args.address) as deployment:
        print(f"CAM Explorer for a class: {deployment.url} ({args.replicas} replicas on ports "
              f"{', '.join(map(str, deployment.ports))}; logs in {folder}). Ctrl-C stops.", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            while all(process.poll() is None for process in deployment.replicas):
                time.sleep(1)


if __name__ == "__main__":
    main()
