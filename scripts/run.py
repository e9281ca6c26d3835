"""`make run`: the whole desk on this machine, on embedded defaults. Ctrl-C stops it all.

Starts the embedded Mongo-protocol server (SecantusDB) unless DESK_MONGO_URL is set,
uses the RabbitMQ on localhost (scripts/rabbitmq.sh installs and starts one if needed;
or DESK_AMQP_URL), a local mail sink that keeps every outgoing e-mail under var/mail/,
loads the demo catalog and starts the five services on their fixed ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
PORTS = {"portal": 8000, "intake": 8001, "boards": 8002, "sla": 8003, "notify": 8004}
MONGO_PORT = int(os.environ.get("DESK_EMBEDDED_MONGO_PORT", "27117"))
SMTP_SINK_PORT = int(os.environ.get("DESK_MAIL_SINK_PORT", "1025"))
ADMIN_TOKEN = os.environ.get("DESK_ADMIN_TOKEN", "dev-admin-token")
REPLY_SECRET = os.environ.get("DESK_REPLY_TOKEN_SECRET", "dev-reply-secret")
LINK_SECRET = os.environ.get("DESK_LINK_SECRET", "dev-link-secret")
SLA_READ_TOKEN = os.environ.get("DESK_SLA_READ_TOKEN", "dev-sla-read-token")
MTA_TOKEN = os.environ.get("DESK_MTA_TOKEN", "dev-mta-token")
# what the portal's help centre presents to boards' knowledge-base API
KB_PORTAL_TOKEN = os.environ.get("DESK_KB_PORTAL_TOKEN", "dev-kb-portal-token")
PROMETHEUS_PORT = int(os.environ.get("DESK_PROMETHEUS_PORT", "9090"))


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(host: str, port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not come up on {host}:{port}")
        time.sleep(0.2)


def write_prometheus_config(directory: Path) -> Path:
    """deploy/prometheus.yml for this machine: the five fixed ports, the repository's rules."""
    targets = ", ".join(f'"127.0.0.1:{port}"' for port in PORTS.values())
    path = directory / "prometheus.yml"
    path.write_text("global: {scrape_interval: 15s, evaluation_interval: 15s}\n"
                    f'rule_files: ["{ROOT / "deploy" / "alerts.yml"}"]\n'
                    "scrape_configs:\n  - job_name: desk\n"
                    f"    static_configs:\n      - targets: [{targets}]\n")
    return path


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if run.py dies, so nothing outlives `make run`."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main() -> None:
    VAR.mkdir(exist_ok=True)
    (VAR / "log").mkdir(exist_ok=True)
    children: list[subprocess.Popen] = []

    def spawn(args: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        log = open(VAR / "log" / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        children.append(proc)
        return proc

    def stop_all(*_: object) -> None:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.terminate()
        for proc in children:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    mongo_url = os.environ.get("DESK_MONGO_URL")
    if not mongo_url:
        if not port_open("127.0.0.1", MONGO_PORT):
            (VAR / "mongo").mkdir(exist_ok=True)
            spawn([sys.executable, "-m", "desk_runtime.embedded_store", "--host", "127.0.0.1",
                   "--port", str(MONGO_PORT), "--storage-path", str(VAR / "mongo"),
                   "--log-level", "WARNING"], "mongo")
            wait_for("127.0.0.1", MONGO_PORT, "embedded MongoDB (SecantusDB)")
        # the embedded single node gains nothing from retryable writes, and its registry of
        # them slows every write as it grows: reach it with retryWrites=false
        mongo_url = f"mongodb://127.0.0.1:{MONGO_PORT}/?directConnection=true&retryWrites=false"

    amqp_url = os.environ.get("DESK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if "DESK_AMQP_URL" not in os.environ and not port_open("127.0.0.1", 5672):
        # installs Debian's rabbitmq-server if there is none, starts it, waits for the port
        subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq.sh")], check=True)

    smtp_host, smtp_port = os.environ.get("DESK_SMTP_HOST"), os.environ.get("DESK_SMTP_PORT")
    if not smtp_host:
        smtp_host, smtp_port = "127.0.0.1", str(SMTP_SINK_PORT)
        if not port_open(smtp_host, SMTP_SINK_PORT):
            spawn([sys.executable, str(ROOT / "scripts" / "mail_sink.py"), str(SMTP_SINK_PORT),
                   str(VAR / "mail")], "mail-sink")
            wait_for(smtp_host, SMTP_SINK_PORT, "mail sink")

    common = {"AMQP_URL": amqp_url, "MONGO_URL": mongo_url, "LOG_JSON": "true",
              "PUBLIC_URL": "", "ADMIN_TOKEN": ADMIN_TOKEN}
    extra = {
        "boards": {"DEMO_CATALOG": "true", "BOOTSTRAP_ADMIN_TOKEN": ADMIN_TOKEN,
                   "COOKIE_SECURE": "false", "SLA_URL": f"http://127.0.0.1:{PORTS['sla']}",
                   "SLA_TOKEN": SLA_READ_TOKEN, "PORTAL_TOKEN": KB_PORTAL_TOKEN,
                   "PORTAL_URL": f"http://127.0.0.1:{PORTS['portal']}",
                   # the admin pages change each service through its admin API
                   "SLA_ADMIN_TOKEN": ADMIN_TOKEN, "NOTIFY_ADMIN_TOKEN": ADMIN_TOKEN,
                   "NOTIFY_URL": f"http://127.0.0.1:{PORTS['notify']}",
                   "PORTAL_ADMIN_URL": f"http://127.0.0.1:{PORTS['portal']}",
                   "PORTAL_ADMIN_TOKEN": ADMIN_TOKEN, "INTAKE_ADMIN_TOKEN": ADMIN_TOKEN,
                   "INTAKE_URL": f"http://127.0.0.1:{PORTS['intake']}"},
        "sla": {"READ_TOKEN": SLA_READ_TOKEN},
        "notify": {"SMTP__HOST": smtp_host, "SMTP__PORT": smtp_port,
                   "REPLY_TOKEN_SECRET": REPLY_SECRET, "LINK_SECRET": LINK_SECRET,
                   "PORTAL_URL": f"http://127.0.0.1:{PORTS['portal']}"},
        "intake": {"REPLY_TOKEN_SECRET": REPLY_SECRET, "LINK_SECRET": LINK_SECRET,
                   "MTA_TOKEN": MTA_TOKEN,
                   "PUBLIC_URL": f"http://127.0.0.1:{PORTS['intake']}"},
        "portal": {"LINK_SECRET": LINK_SECRET, "SMTP__HOST": smtp_host, "SMTP__PORT": smtp_port,
                   "INTAKE_URL": f"http://127.0.0.1:{PORTS['intake']}",
                   "PUBLIC_URL": f"http://127.0.0.1:{PORTS['portal']}", "COOKIE_SECURE": "false",
                   "BOARDS_URL": f"http://127.0.0.1:{PORTS['boards']}",
                   "BOARDS_TOKEN": KB_PORTAL_TOKEN},
    }
    for name, port in PORTS.items():
        prefix = name.upper() + "_"
        env = {prefix + k: v for k, v in {**common, **extra.get(name, {}),
                                          "HTTP_PORT": str(port)}.items()}
        env = {k: v for k, v in env.items() if k not in os.environ}  # the caller's env wins
        spawn([sys.executable, "-m", name], name, env)

    deadline = time.monotonic() + 60
    pending = dict(PORTS)
    while pending and time.monotonic() < deadline:
        for name, port in list(pending.items()):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        pending.pop(name)
            except OSError:
                pass
        for proc in children:
            if proc.poll() is not None:
                print(f"a process exited early; see {VAR / 'log'}")
                stop_all()
        time.sleep(0.3)
    if pending:
        print(f"not ready after 60 s: {', '.join(pending)}; see {VAR / 'log'}")
        stop_all()

    prometheus = "not installed (apt-get install prometheus)"
    if shutil.which("prometheus") and port_open("127.0.0.1", PROMETHEUS_PORT):
        prometheus = f"port {PROMETHEUS_PORT} already taken (DESK_PROMETHEUS_PORT)"
    elif shutil.which("prometheus"):
        (VAR / "prometheus").mkdir(exist_ok=True)
        spawn(["prometheus", f"--config.file={write_prometheus_config(VAR / 'prometheus')}",
               f"--storage.tsdb.path={VAR / 'prometheus' / 'data'}",
               f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"], "prometheus")
        wait_for("127.0.0.1", PROMETHEUS_PORT, "Prometheus")
        prometheus = f"http://127.0.0.1:{PROMETHEUS_PORT}/alerts   (rules: deploy/alerts.yml)"

    print(f"""
Service desk is running.
  Customer portal   http://127.0.0.1:{PORTS['portal']}/
  Agent board       http://127.0.0.1:{PORTS['boards']}/   (sign in with the admin token: {ADMIN_TOKEN})
  Statistics        http://127.0.0.1:{PORTS['boards']}/stats
  Inbound e-mail    SMTP 127.0.0.1:2525, e.g. to problem@desk.localhost
                    (or POST /v1/inbound/email with Authorization: Bearer {MTA_TOKEN})
  Intake API        http://127.0.0.1:{PORTS['intake']}/docs
  SLA / notify      http://127.0.0.1:{PORTS['sla']}/docs  http://127.0.0.1:{PORTS['notify']}/docs
  Metrics           http://127.0.0.1:<port>/metrics on every service
  Prometheus        {prometheus}
  Outgoing e-mail   {VAR / 'mail'} (one .eml per message)   Logs  {VAR / 'log'}
Try:  curl -X POST http://127.0.0.1:{PORTS['intake']}/v1/requests -H 'content-type: application/json' \\
        -d '{{"service":"question","requester":{{"email":"you@example.com","name":"You"}},"subject":"Hello","text":"First request"}}'
Ctrl-C stops everything.""", flush=True)
    while True:
        for proc in children:
            if proc.poll() is not None:
                print(f"process {proc.args} exited with {proc.returncode}; stopping")
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()
