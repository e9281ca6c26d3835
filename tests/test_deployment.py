"""docker-compose and the Kubernetes manifests are well-formed and give every service
what it needs in production (compose cannot be started on this machine, so check it)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from boards.settings import BoardsSettings
from intake.settings import IntakeSettings
from notify.settings import NotifySettings
from portal.settings import PortalSettings
from sla.settings import SlaSettings

from tests.support.infra import free_port

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"intake": IntakeSettings, "boards": BoardsSettings, "sla": SlaSettings,
            "notify": NotifySettings, "portal": PortalSettings}
PORTS = {"portal": 8000, "intake": 8001, "boards": 8002, "sla": 8003, "notify": 8004}


def required_env(name: str) -> set[str]:
    cls = SETTINGS[name]
    prefix = cls.model_config["env_prefix"]
    return {prefix + field.upper() for field in cls.REQUIRED_IN_PRODUCTION}


def missing_from(name: str, env: set[str]) -> set[str]:
    """Required settings not given; a nested one (`smtp`) is given by any `SMTP__*` var."""
    return {var for var in required_env(name)
            if var not in env and not any(e.startswith(var + "__") for e in env)}


def test_compose_runs_each_service_with_its_required_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"rabbitmq", "mongo", "prometheus"} <= set(services)
    assert "--replSet" in services["mongo"]["command"]  # transactions need a replica set
    for name, port in PORTS.items():
        svc = services[name]
        assert svc["command"] == ["python", "-m", name]
        env = svc["environment"]
        missing = missing_from(name, set(env))
        assert not missing, f"{name} lacks {missing}"
        prefix = SETTINGS[name].model_config["env_prefix"]
        assert env[prefix + "HTTP_PORT"] == str(port)
        assert "replicaSet=" in env[prefix + "MONGO_URL"]
        assert f"{port}:{port}" in svc["ports"]
        # every variable is one the service actually reads
        fields = set(SETTINGS[name].model_fields)
        for var in env:
            assert var.startswith(prefix)
            assert var[len(prefix):].lower().split("__")[0] in fields, var


def test_prometheus_scrapes_all_five():
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    assert targets == {f"{n}:{p}" for n, p in PORTS.items()}
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    assert "desk_bus_dead_lettered_total" in exprs and "desk_outbox_lag_seconds" in exprs


def test_kubernetes_has_a_deployment_and_service_per_desk_service():
    for name, port in PORTS.items():
        docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / f"{name}.yaml")
                                       .read_text()))
        kinds = {d["kind"] for d in docs}
        assert kinds == {"Deployment", "Service"}
        deploy = next(d for d in docs if d["kind"] == "Deployment")
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"] for e in container["env"]}
        assert not missing_from(name, env), name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["ports"][0]["containerPort"] == port


# ---- a broker on a fresh machine: scripts/rabbitmq.sh, run before anything needs one ----

BROKER_SCRIPT = ROOT / "scripts" / "rabbitmq.sh"


def _dry_run(target: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("AMQP_URL")} | env
    return subprocess.run(["make", "-n", target], cwd=ROOT, env=clean, capture_output=True,
                          text=True, check=True).stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_targets_start_a_broker_before_they_need_one():
    for target, needs in (("run", "scripts/run.py"), ("test", "pytest"),
                          ("test-unit", "pytest"), ("test-e2e", "pytest"),
                          ("bench", "bench/run_all.py")):
        lines = _dry_run(target)
        broker = [i for i, line in enumerate(lines) if "scripts/rabbitmq.sh" in line]
        main = [i for i, line in enumerate(lines) if needs in line]
        assert broker and main and broker[0] < main[0], (target, lines)
    # a broker of the caller's own is passed on, so the script leaves the machine alone
    assert any('rabbitmq.sh "amqp://elsewhere/"' in line
               for line in _dry_run("run", DESK_AMQP_URL="amqp://elsewhere/"))
    assert any('rabbitmq.sh "amqp://tests/"' in line
               for line in _dry_run("test", DESK_TEST_AMQP_URL="amqp://tests/"))


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_broker_script_is_shellcheck_clean():
    for script in (BROKER_SCRIPT, ROOT / "scripts" / "system-deps.sh"):
        result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stdout


def _stubbed(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with recording stand-ins for what the script may run; a stub rabbitmq-server
    "starts" by listening on RABBITMQ_NODE_PORT. Nothing real is installed or started."""
    stubs, calls = tmp_path / "bin", tmp_path / "calls"
    stubs.mkdir()
    calls.touch()
    listener = (f"{sys.executable} -c 'import socket, time; s = socket.socket(); "
                "s.bind((\"127.0.0.1\", int(\"'$RABBITMQ_NODE_PORT'\"))); s.listen(); "
                "time.sleep(60)'")
    bodies = {
        "rabbitmq-server": f'echo "rabbitmq-server $*" >> {calls}\n'
                           f"{listener} >/dev/null 2>&1 &\necho $! > {tmp_path / 'pid'}\n",
        "apt-get": f'echo "apt-get $*" >> {calls}\n',
        "sudo": f'echo "sudo $*" >> {calls}\nexec "$@"\n',
    }
    for name, body in bodies.items():
        (stubs / name).write_text("#!/bin/sh\n" + body)
        (stubs / name).chmod(0o755)
    return {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path)}, calls


def test_broker_script_does_nothing_when_a_broker_answers(tmp_path):
    env, calls = _stubbed(tmp_path)
    with socket.socket() as running:
        running.bind(("127.0.0.1", 0))
        running.listen()
        env["RABBITMQ_NODE_PORT"] = str(running.getsockname()[1])
        result = subprocess.run(["bash", str(BROKER_SCRIPT)], env=env, capture_output=True,
                                text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert calls.read_text() == "" and result.stdout == ""


def test_broker_script_leaves_a_callers_broker_alone(tmp_path):
    env, calls = _stubbed(tmp_path)
    env["RABBITMQ_NODE_PORT"] = str(free_port())  # nothing listens there
    result = subprocess.run(["bash", str(BROKER_SCRIPT), "amqp://guest:guest@elsewhere/"],
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert calls.read_text() == ""


def test_broker_script_starts_an_installed_broker_and_waits_for_it(tmp_path):
    env, calls = _stubbed(tmp_path)
    port = free_port()
    env["RABBITMQ_NODE_PORT"] = str(port)
    try:
        result = subprocess.run(["bash", str(BROKER_SCRIPT)], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert calls.read_text() == "rabbitmq-server -detached\n"  # no apt-get, no sudo
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it returned once the port answered
    finally:
        pid = (tmp_path / "pid").read_text().strip() if (tmp_path / "pid").exists() else ""
        if pid:
            os.kill(int(pid), signal.SIGTERM)


def test_the_portal_runs_in_production_and_shares_its_credential_with_intake():
    """No deployment switches the portal to development mode (which would let it start
    without its public address), and intake accepts the credential the portal presents."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert compose["portal"]["environment"].get("PORTAL_ENV", "production") == "production"
    assert compose["portal"]["environment"]["PORTAL_INTAKE_TOKEN"] == \
        compose["intake"]["environment"]["INTAKE_PORTAL_TOKEN"]
    secrets = {}
    for name in ("portal", "intake"):
        docs = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / f"{name}.yaml").read_text())
        deploy = next(d for d in docs if d["kind"] == "Deployment")
        env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env.get("PORTAL_ENV", {}).get("value", "production") == "production"
        token = env["PORTAL_INTAKE_TOKEN" if name == "portal" else "INTAKE_PORTAL_TOKEN"]
        secrets[name] = token["valueFrom"]["secretKeyRef"]
    assert secrets["portal"] == secrets["intake"]
