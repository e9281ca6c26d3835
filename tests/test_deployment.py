"""docker-compose and the Kubernetes manifests are well-formed and give every service
what it needs in production (compose cannot be started on this machine, so check it)."""

from pathlib import Path

import yaml

from boards.settings import BoardsSettings
from intake.settings import IntakeSettings
from notify.settings import NotifySettings
from portal.settings import PortalSettings
from sla.settings import SlaSettings

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
