"""deploy/'s manifests checked offline: rendered with kubectl's kustomize, validated against the
Kubernetes API's own models (Debian's python3-kubernetes: every field known, every value of its
type, required fields present, enums respected), and held to the deployment policy of
docs/DEPLOY.md. Each check returns a list of problems (empty: fine), so that the tests can also
feed it broken objects and see it refuse them.
"""
import copy
import os
import re
import shutil
import subprocess

import yaml

from conftest import ROOT

DEPLOY = os.path.join(ROOT, "deploy")
OVERLAYS = ("dev", "prod", "external-s3")
COFFER_IMAGE = "ghcr.io/coffer-project/coffer"
COFFER_BINARY = "/usr/local/bin/coffer"
COFFER_UID = 10001
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "CronJob")
# Where an object of a kind keeps its pod template.
POD_SPEC_PATH = {"StatefulSet": ("spec", "template", "spec"), "Deployment": ("spec", "template", "spec"),
                 "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


def kubectl():
    path = shutil.which("kubectl")
    assert path, "kubectl is missing: scripts/install-deps.sh test installs kubernetes-client"
    return path


def render(path, kubectl_bin=None):
    """The objects `kubectl kustomize path` prints."""
    p = subprocess.run([kubectl_bin or kubectl(), "kustomize", path], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"kubectl kustomize {path} failed:\n{p.stderr}"
    return [o for o in yaml.safe_load_all(p.stdout) if o]


def overlay_images(overlay_dir):
    """The overlay's `images:` pins: {name as the base writes it: (name it becomes, tag)}."""
    with open(os.path.join(overlay_dir, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    return {i["name"]: (i.get("newName", i["name"]), i.get("newTag")) for i in k.get("images", [])}


def pod_spec(obj):
    node = obj
    for key in POD_SPEC_PATH[obj["kind"]]:
        node = node.get(key, {})
    return node


def containers(spec):
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


# --- schema -------------------------------------------------------------------------------------

def _model_class(api_version, kind):
    from kubernetes.client import models
    version = api_version.split("/")[-1]
    return getattr(models, version[0].upper() + version[1:] + kind, None)


def _check_value(value, type_name, where, problems):
    """Checks value against a python-kubernetes type name; returns the value to build models with."""
    from kubernetes.client import models
    if value is None:
        return None
    if type_name == "object":  # IntOrString, quantities given as numbers, free-form fields
        return value
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            problems.append(f"{where}: a list expected, got {type(value).__name__}")
            return None
        return [_check_value(v, m.group(1), f"{where}[{i}]", problems) for i, v in enumerate(value)]
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{where}: a map expected, got {type(value).__name__}")
            return None
        return {k: _check_value(v, m.group(1), f"{where}.{k}", problems) for k, v in value.items()}
    scalar = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "date": str}
    if type_name in scalar:
        ok = isinstance(value, scalar[type_name]) and not (type_name == "int" and isinstance(value, bool))
        if not ok:
            problems.append(f"{where}: {type_name} expected, got {type(value).__name__} {value!r}")
        return value
    cls = getattr(models, type_name, None)
    if cls is None:
        problems.append(f"{where}: unknown model {type_name}")
        return None
    return _check_model(value, cls, where, problems)


def _check_model(data, cls, where, problems):
    if not isinstance(data, dict):
        problems.append(f"{where}: an object ({cls.__name__}) expected, got {type(data).__name__}")
        return None
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    kwargs = {}
    for key, value in data.items():
        attr = by_json.get(key)
        if attr is None:
            problems.append(f"{where}: unknown field {key!r} in {cls.__name__}")
            continue
        kwargs[attr] = _check_value(value, cls.openapi_types[attr], f"{where}.{key}", problems)
    try:  # the model's setters refuse missing required fields and values outside an enum
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        problems.append(f"{where}: {cls.__name__}: {e}")
        return None


def _check_monitoring(obj, problems):
    """The Prometheus Operator's kinds: no model in python3-kubernetes, so their structure here."""
    name = f"{obj['kind']}/{obj['metadata'].get('name')}"
    extra = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
    if extra:
        problems.append(f"{name}: unknown top-level fields {sorted(extra)}")
    _check_model(obj["metadata"], _model_class("v1", "ObjectMeta"), f"{name}.metadata", problems)
    spec = obj.get("spec") or {}
    if obj["kind"] == "ServiceMonitor":
        if set(spec) - {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"}:
            problems.append(f"{name}: unknown spec fields {sorted(set(spec))}")
        _check_model(spec.get("selector", {}), _model_class("v1", "LabelSelector"), f"{name}.selector", problems)
        endpoints = spec.get("endpoints")
        if not endpoints:
            problems.append(f"{name}: no endpoints")
        for i, ep in enumerate(endpoints or []):
            unknown = set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels",
                                 "relabelings", "metricRelabelings"}
            if unknown or not isinstance(ep.get("port"), str):
                problems.append(f"{name}.endpoints[{i}]: unknown fields {sorted(unknown)} or no named port")
    else:
        groups = spec.get("groups")
        if not groups or set(spec) != {"groups"}:
            problems.append(f"{name}: spec must hold groups only")
        for g in groups or []:
            if set(g) - {"name", "interval", "rules"} or not g.get("rules"):
                problems.append(f"{name}: group {g.get('name')}: unknown fields or no rules")
            for r in g.get("rules", []):
                if set(r) - {"alert", "record", "expr", "for", "labels", "annotations"} or "expr" not in r:
                    problems.append(f"{name}: rule {r.get('alert')}: unknown fields or no expr")


def schema_problems(objects):
    problems = []
    for obj in objects:
        kind, api_version = obj.get("kind"), obj.get("apiVersion", "")
        if api_version.startswith("monitoring.coreos.com/") and kind in ("ServiceMonitor", "PrometheusRule"):
            _check_monitoring(obj, problems)
            continue
        cls = _model_class(api_version, kind)
        if cls is None:
            problems.append(f"{api_version} {kind}: not a Kubernetes API kind")
            continue
        where = f"{kind}/{obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion") != api_version or obj.get("kind") != kind:
            problems.append(f"{where}: apiVersion/kind missing")
        _check_model(obj, cls, where, problems)
    return problems


# --- policy -------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$|^KEY$)", re.I)
# Things that look like a credential wherever they appear: an AWS access key id, a PEM block,
# or a long unbroken run of base64/hex characters.
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN|(?<![\w/.-])[A-Za-z0-9+/=_]{32,}(?![\w/.-])")


def _secretish(name, value):
    if not isinstance(value, str):
        return False
    if SECRET_NAME.search(name or "") and not (name or "").upper().endswith("_FILE"):
        return True
    return bool(SECRET_VALUE.search(value))


def _container_problems(kind, name, c, pod, pins, problems):
    where = f"{kind}/{name} container {c.get('name')}"
    image = c.get("image", "")
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    pinned = {new: t for new, t in pins.values()}
    if not tag or tag == "latest":
        problems.append(f"{where}: image {image!r} has no pinned tag")
    elif pinned.get(repo) != tag:
        problems.append(f"{where}: image {image!r} is not pinned by the overlay's images:")
    if repo == COFFER_IMAGE and c.get("command") != [COFFER_BINARY]:
        problems.append(f"{where}: command must be [{COFFER_BINARY!r}] (exec form: the image has no shell)")
    if any(x in ("sh", "bash", "/bin/sh", "/bin/bash") for x in c.get("command") or []):
        problems.append(f"{where}: runs a shell")
    psc, sc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        problems.append(f"{where}: runAsNonRoot is not true")
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    if uid is None or uid == 0 or (repo == COFFER_IMAGE and uid != COFFER_UID):
        problems.append(f"{where}: runAsUser is {uid!r}, not the image's user {COFFER_UID}")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities do not drop ALL")
    if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in (res.get(part) or {}):
                problems.append(f"{where}: no resources.{part}.{what}")
    if kind in ("StatefulSet", "Deployment"):
        for probe in ("readinessProbe", "livenessProbe"):
            if not c.get(probe):
                problems.append(f"{where}: no {probe}")
    for e in c.get("env") or []:
        if "value" in e and _secretish(e.get("name"), e["value"]):
            problems.append(f"{where}: env {e.get('name')} holds a literal secret")
    for a in [*(c.get("command") or []), *(c.get("args") or [])]:
        if _secretish("", a):
            problems.append(f"{where}: an argument looks like a secret: {a[:8]}...")


def policy_problems(objects, pins):
    """The deployment policy: pins is overlay_images() of the overlay that rendered objects."""
    problems = []
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    for o in objects:
        kind, name = o["kind"], o["metadata"]["name"]
        if kind == "Secret":
            problems.append(f"Secret/{name}: a Secret in the manifests (create it outside git)")
        if kind == "ConfigMap":
            for k, v in (o.get("data") or {}).items():
                if _secretish(k, v):
                    problems.append(f"ConfigMap/{name}: {k} looks like a secret")
        if kind == "ServiceAccount" and o.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{name}: automountServiceAccountToken is not false")
        if kind == "Ingress":
            if not o["spec"].get("tls"):
                problems.append(f"Ingress/{name}: no TLS")
            if not any(a.startswith("cert-manager.io/") for a in o["metadata"].get("annotations") or {}):
                problems.append(f"Ingress/{name}: no cert-manager annotation")
        if kind not in WORKLOAD_KINDS:
            continue
        pod = pod_spec(o)
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{kind}/{name}: automountServiceAccountToken is not false")
        account = pod.get("serviceAccountName")
        if account not in accounts:
            problems.append(f"{kind}/{name}: service account {account!r} is not in the manifests")
        if kind == "CronJob":
            if o["spec"].get("concurrencyPolicy") != "Forbid":
                problems.append(f"CronJob/{name}: concurrencyPolicy is not Forbid")
            if not isinstance(o["spec"]["jobTemplate"]["spec"].get("backoffLimit"), int):
                problems.append(f"CronJob/{name}: no backoffLimit")
        for c in containers(pod):
            _container_problems(kind, name, c, pod, pins, problems)
    return problems


def referenced_secrets(objects):
    """The Secrets the objects name (volumes, env), but not the ones cert-manager makes."""
    names = set()
    for o in objects:
        if o["kind"] not in WORKLOAD_KINDS:
            continue
        pod = pod_spec(o)
        for v in pod.get("volumes", []):
            if "secret" in v:
                names.add(v["secret"]["secretName"])
        for c in containers(pod):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
            for e in c.get("envFrom") or []:
                if "secretRef" in e:
                    names.add(e["secretRef"]["name"])
    return names


def mutated(objects, kind, name, change):
    """A deep copy of objects with change(obj) applied to the one object of that kind and name."""
    out = copy.deepcopy(objects)
    target = [o for o in out if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(target) == 1, f"{kind}/{name} not rendered"
    change(target[0])
    return out
