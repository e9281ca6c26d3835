"""The Kubernetes manifests against the API schemas, offline: built-in kinds through the
schemas kubernetes-validate bundles, KEDA's through the copies in deploy/kubernetes/schemas/;
then what the schemas cannot say (probes, budgets, one scaler per Deployment, the caps)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from desk_contracts.topology import PARTITIONS, Topology, queue_spec, queues_of
from kubernetes_validate.utils import (
    SchemaNotFoundError,
    all_versions,
    latest_version,
    major_minor,
)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SCHEMAS = K8S / "schemas"
# The oldest Kubernetes the manifests are written for (SCALING.md) and the newest the
# validator knows: a field that is new, renamed or gone shows up in one of the two.
KUBERNETES_VERSIONS = ("1.30", major_minor(latest_version()))
KEDA_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
                ("keda.sh/v1alpha1", "TriggerAuthentication"):
                    "keda-triggerauthentication-v1alpha1.json"}
SERVICES = ("portal", "intake", "boards", "sla", "notify")
# Per-card order holds within one process until card events are partitioned (#21 item 1):
# these consume card-ordered events and stay at one replica until then.
# consumers scaled by KEDA up to the partition count (a card's events: one replica at a time)
PARTITIONED = ("boards", "sla", "notify")
HPA_SCALED = ("portal", "intake")


def manifests() -> list[tuple[str, dict]]:
    """(file relative to deploy/kubernetes, document) for every YAML document there."""
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                out.append((str(path.relative_to(K8S)), doc))
    return out


DOCS = manifests()


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == kind}


def keda_validator(doc: dict) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / KEDA_SCHEMAS[(doc["apiVersion"], doc["kind"])]).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(doc: dict, version: str) -> list[str]:
    """Every way `doc` breaks its schema (empty when it fits)."""
    if (doc.get("apiVersion"), doc.get("kind")) in KEDA_SCHEMAS:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in keda_validator(doc).iter_errors(doc)]
    try:
        # strict: an unknown field is an error (the API server would drop it silently)
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"]
    return []


def test_every_manifest_fits_its_schema():
    # the validator falls back to an older bundled version silently: be sure it has ours
    assert set(KUBERNETES_VERSIONS) <= {major_minor(v) for v in all_versions()}
    kinds = {d["kind"] for _, d in DOCS}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ScaledObject", "TriggerAuthentication"} <= kinds
    for version in KUBERNETES_VERSIONS:
        for path, doc in DOCS:
            assert not schema_errors(doc, version), (version, path, doc["kind"],
                                                     schema_errors(doc, version))


def _deployment() -> dict:
    return copy.deepcopy(of_kind("Deployment")["desk-portal"])


def _container(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]["containers"][0]


def _broken_deployment_port(doc):
    _container(doc)["ports"][0]["containerPort"] = "eight thousand"


def _broken_deployment_probe(doc):
    _container(doc)["readinessProbe"]["httpGet"]["paht"] = "/readyz"


def _broken_hpa(doc):
    doc["spec"]["minReplicas"] = "2"


def _broken_pdb(doc):
    doc["spec"]["maxUnavailable"] = {"pods": 1}


def _broken_scaledobject_count(doc):
    doc["spec"]["maxReplicaCount"] = "1"


def _broken_scaledobject_metadata(doc):
    doc["spec"]["triggers"][0]["metadata"]["value"] = 100  # the CRD takes strings only


def _broken_scaledobject_mode(doc):
    doc["spec"]["triggers"][0]["metadata"]["mode"] = "queueLength"


def _broken_scaledobject_typo(doc):
    doc["spec"]["maxReplicas"] = doc["spec"].pop("maxReplicaCount")


def _broken_trigger_auth(doc):
    del doc["spec"]["secretTargetRef"][0]["key"]


@pytest.mark.parametrize(("kind", "name", "breaks"), [
    ("Deployment", "desk-portal", _broken_deployment_port),
    ("Deployment", "desk-portal", _broken_deployment_probe),
    ("HorizontalPodAutoscaler", "desk-intake", _broken_hpa),
    ("PodDisruptionBudget", "desk-sla", _broken_pdb),
    ("ScaledObject", "desk-notify", _broken_scaledobject_count),
    ("ScaledObject", "desk-sla", _broken_scaledobject_metadata),
    ("ScaledObject", "desk-notify", _broken_scaledobject_mode),
    ("ScaledObject", "desk-boards", _broken_scaledobject_typo),
    ("TriggerAuthentication", "desk-rabbitmq", _broken_trigger_auth),
])
def test_a_broken_copy_is_rejected(kind, name, breaks):
    doc = copy.deepcopy(of_kind(kind)[name])
    assert not schema_errors(doc, latest_version())
    breaks(doc)
    assert schema_errors(doc, latest_version())


def test_an_unknown_kind_is_not_waved_through():
    doc = {"apiVersion": "apps/v1", "kind": "Deploymint", "metadata": {"name": "x"}}
    with pytest.raises(SchemaNotFoundError):
        schema_errors(doc, latest_version())


def test_every_container_has_probes_and_resources():
    deployments = of_kind("Deployment")
    assert set(deployments) == {f"desk-{s}" for s in SERVICES}
    for name, deploy in deployments.items():
        for container in deploy["spec"]["template"]["spec"]["containers"]:
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            resources = container["resources"]
            # CPU requests are what a CPU target is a share of; memory bounds a leak
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_every_deployment_has_a_disruption_budget_a_drain_can_honour():
    budgets = of_kind("PodDisruptionBudget")
    for name, deploy in of_kind("Deployment").items():
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets.values() if _selects(b["spec"]["selector"], labels)]
        assert len(mine) == 1, name
        # one disruption at a time: "minAvailable: 1" would block every drain of a
        # one-replica service and let a drain take all but one of a scaled-out one
        spec = mine[0]["spec"]
        assert spec.get("maxUnavailable") == 1 and "minAvailable" not in spec, name


def test_each_deployment_has_exactly_one_scaler():
    """An HPA and a ScaledObject on one Deployment would fight over its replica count."""
    deployments = of_kind("Deployment")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in
            of_kind("HorizontalPodAutoscaler").values()}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind("ScaledObject").values()}
    assert set(hpas) | set(scaled) == set(deployments)
    assert not set(hpas) & set(scaled)
    assert set(hpas) == {f"desk-{s}" for s in HPA_SCALED}
    for target, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        # an applied replica count would reset the autoscaler's on every `kubectl apply`
        assert "replicas" not in deployments[target]["spec"], target


def test_consumers_scale_up_to_the_partition_count_and_keda_owns_the_count():
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind("ScaledObject").values()}
    deployments = of_kind("Deployment")
    for service in PARTITIONED:
        spec = scaled[f"desk-{service}"]["spec"]
        # one active consumer per partition: a replica beyond their count would idle
        assert spec["minReplicaCount"] == 1 and spec["maxReplicaCount"] == PARTITIONS, service
        # an applied `replicas` would reset KEDA's count on every `kubectl apply`
        assert "replicas" not in deployments[f"desk-{service}"]["spec"], service
        # rolling updates are safe: old and new pods share the partitions like replicas
        assert deployments[f"desk-{service}"]["spec"].get("strategy", {}).get(
            "type", "RollingUpdate") == "RollingUpdate", service


def test_scaled_objects_watch_their_own_queues_through_the_services_broker():
    auths = of_kind("TriggerAuthentication")
    amqp_refs = {(ref["name"], ref["key"]) for ref in auths["desk-rabbitmq"]["spec"]
                 ["secretTargetRef"] if ref["parameter"] == "host"}
    for deploy in of_kind("Deployment").values():
        env = {e["name"]: e for e in _container(deploy)["env"]}
        amqp = next(e for n, e in env.items() if n.endswith("_AMQP_URL"))
        secret = amqp["valueFrom"]["secretKeyRef"]
        assert (secret["name"], secret["key"]) in amqp_refs  # KEDA reads the same broker
    for scaled in of_kind("ScaledObject").values():
        service = scaled["spec"]["scaleTargetRef"]["name"].removeprefix("desk-")
        queues = [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]
                  if t["type"] == "rabbitmq"]
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "rabbitmq":
                assert trigger["authenticationRef"]["name"] in auths
        topology = Topology()
        assert all(queue_spec(topology.logical_queue(q)).service == service
                   for q in queues), queues
        # a backlog on any partition of its queues is a reason to scale: none is unwatched
        assert sorted(queues) == sorted(name for q in queues_of(service)
                                        for name in topology.partition_queues(q)), service
