"""deploy/ (kustomize base and overlays) and .github/workflows/ci.yml, checked offline.

Every overlay renders from what a clone holds (no Secret file anywhere), every rendered object
validates against the Kubernetes API's models, the policy holds (probes, non-root, read-only
root, resources, no literal secrets, images pinned by the overlay, Forbid, no token), the policy
check refuses objects broken on purpose, the alert rules pass promtool and fire as intended on
made-up series, and the CI workflow is well-formed and runs only scripts that exist.
About 6 s (the kustomize renders and promtool).
"""
import os
import re
import shutil
import subprocess

import pytest
import yaml

import deploy_checks as dc
from conftest import ROOT

OVERLAY_DIRS = {o: os.path.join(dc.DEPLOY, "overlays", o) for o in dc.OVERLAYS}


@pytest.fixture(scope="module")
def rendered():
    return {o: dc.render(d) for o, d in OVERLAY_DIRS.items()}


def tracked_files(under):
    """What a clone holds under a directory: tracked files and new ones not ignored."""
    p = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", under], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return [f for f in p.stdout.splitlines() if os.path.exists(os.path.join(ROOT, f))]


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_overlay_renders_from_a_clean_checkout(overlay, rendered, tmp_path):
    for f in tracked_files("deploy"):
        dest = tmp_path / f
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, f), dest)
    objects = dc.render(str(tmp_path / "deploy" / "overlays" / overlay))
    assert objects == rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "Ingress", "CronJob", "NetworkPolicy", "ServiceMonitor",
            "PrometheusRule", "ServiceAccount"} <= kinds
    assert ("StatefulSet" in kinds) == (overlay != "external-s3")
    assert "Secret" not in kinds
    assert len({o["metadata"].get("namespace") for o in objects}) == 1
    for f in tracked_files("deploy"):
        if f.endswith("kustomization.yaml"):
            with open(os.path.join(ROOT, f)) as fh:
                k = yaml.safe_load(fh)
            assert "secretGenerator" not in k, f"{f}: Secrets are made outside git"


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_debian_kubectl_renders_the_same(overlay, rendered):
    """Debian 12's kubernetes-client (kubectl 1.20, kustomize v2.0), the kubectl a fresh Debian
    machine gets, renders every overlay to the same objects as the kubectl on PATH, which may be
    another vendor's and much newer (scripts/debian-kubectl.sh unpacks Debian's beside it)."""
    p = subprocess.run([os.path.join(ROOT, "scripts", "debian-kubectl.sh")], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    debian = p.stdout.strip()
    version = subprocess.run([debian, "version", "--client"], capture_output=True, text=True, timeout=60).stdout
    assert 'GitVersion:"v1.20.' in version, version
    objects = dc.render(os.path.join(dc.DEPLOY, "overlays", overlay), kubectl_bin=debian)

    def by_name(objs):  # the two print objects of one kind in another order; apply takes any
        return sorted(objs, key=lambda o: (o["kind"], o["metadata"]["name"]))
    assert len(objects) == len(rendered[overlay])
    assert by_name(objects) == by_name(rendered[overlay])


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_rendered_objects_validate_against_the_api_schemas(overlay, rendered):
    assert dc.schema_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_policy_holds(overlay, rendered):
    pins = dc.overlay_images(OVERLAY_DIRS[overlay])
    assert pins[dc.COFFER_IMAGE][1], "the overlay pins coffer's tag"
    assert dc.policy_problems(rendered[overlay], pins) == []


def test_store_reads_its_root_credentials_from_secret_files(rendered):
    sts = next(o for o in rendered["prod"] if o["kind"] == "StatefulSet")
    spec = dc.pod_spec(sts)
    c = spec["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    secret_vol = next(v for v in spec["volumes"] if v["name"] == "root-credentials")
    assert secret_vol["secret"]["secretName"] == "coffer-root"
    assert env["COFFER_ROOT_USER_FILE"]["value"].startswith(mounts["root-credentials"] + "/")
    assert env["COFFER_ROOT_PASSWORD_FILE"]["value"].startswith(mounts["root-credentials"] + "/")
    assert mounts["data"] == "/data" and sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert c["args"][:5] == ["server", "--address", ":9000", "--data", "/data"]
    assert {p["httpGet"]["path"] for p in (c["readinessProbe"], c["livenessProbe"])} == {"/health/ready",
                                                                                     "/health/live"}
    console = next(o for o in rendered["prod"] if o["kind"] == "Deployment")
    assert console["spec"]["replicas"] == 2


def test_jobs_schedules_and_what_they_run(rendered):
    jobs = {o["metadata"]["name"]: o for o in rendered["prod"] if o["kind"] == "CronJob"}
    assert jobs["coffer-snapshot-chain"]["spec"]["schedule"] == "0 */6 * * *"
    for name in ("coffer-backup-postgres", "coffer-mirror-nfs"):
        minute, hour, *rest = jobs[name]["spec"]["schedule"].split()
        assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"], f"{name} runs nightly"
    steps = {name: {c["name"]: c for c in dc.containers(dc.pod_spec(o))} for name, o in jobs.items()}
    backup = steps["coffer-backup-postgres"]["snapshot"]["args"]
    assert "--encrypt-key-file" in backup
    mirror = steps["coffer-mirror-nfs"]["mirror"]["args"]
    assert mirror[:4] == ["mirror", "--dated", "--keep-daily", "7"]
    for name, by_name in steps.items():
        metrics_files = [c["args"][c["args"].index("--metrics-file") + 1] for c in by_name.values()
                         if "--metrics-file" in (c.get("args") or [])]
        assert len(metrics_files) == 1, f"{name}: one step writes the run's metrics"
        push = by_name["push-metrics"]
        assert "@" + metrics_files[0] in push["args"], f"{name}: the metrics file is pushed"
        assert push["args"][-1].endswith(f"/metrics/job/{name}/kubernetes_namespace/$(POD_NAMESPACE)")
        assert list(by_name)[-1] == "push-metrics"


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_console_tiers_add_up_to_the_site_rates(overlay, rendered):
    """Each replica paces its own downloads: replicas x per-replica rate is the tier's rate."""
    console = next(o for o in rendered[overlay] if o["kind"] == "Deployment")
    args = dc.pod_spec(console)["containers"][0]["args"]
    tiers = dict(args[i + 1].split("=") for i, a in enumerate(args) if a == "--tier")
    total = {name: console["spec"]["replicas"] * int(rate.removesuffix("MB/s")) for name, rate in tiers.items()}
    assert total == {"free": 50, "premium": 250}


def test_only_the_console_and_the_jobs_reach_the_store(rendered):
    policy = next(o for o in rendered["prod"] if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "coffer-store")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "store"
    peers = policy["spec"]["ingress"][0]["from"]
    in_namespace = [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers
                    if "namespaceSelector" not in p]
    assert sorted(in_namespace) == ["console", "jobs"]
    # The only other peer is Prometheus in the monitoring namespace.
    others = [p for p in peers if "namespaceSelector" in p]
    assert len(others) == 1 and others[0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    # Every pod of the console and the jobs carries the labels the policy admits.
    for o in rendered["prod"]:
        if o["kind"] in ("Deployment", "CronJob"):
            labels = (o["spec"].get("template") or o["spec"]["jobTemplate"]["spec"]["template"])["metadata"]["labels"]
            assert labels["app.kubernetes.io/component"] in ("console", "jobs")


@pytest.mark.parametrize("overlay", dc.OVERLAYS)
def test_every_secret_has_its_create_command_in_the_docs(overlay, rendered):
    with open(os.path.join(ROOT, "docs", "DEPLOY.md")) as f:
        documented = set(re.findall(r"kubectl (?:-n \S+ )?create secret (?:generic|tls) ([\w-]+)", f.read()))
    assert dc.referenced_secrets(rendered[overlay]) <= documented


BREAKAGES = [
    ("no readiness probe", "StatefulSet", "coffer-store",
     lambda o: dc.pod_spec(o)["containers"][0].pop("readinessProbe"), "no readinessProbe"),
    ("no liveness probe", "Deployment", "coffer-console",
     lambda o: dc.pod_spec(o)["containers"][0].pop("livenessProbe"), "no livenessProbe"),
    ("root", "StatefulSet", "coffer-store",
     lambda o: dc.pod_spec(o)["containers"][0]["securityContext"].update(runAsUser=0), "runAsUser is 0"),
    ("writable root", "Deployment", "coffer-console",
     lambda o: dc.pod_spec(o)["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
     "readOnlyRootFilesystem"),
    ("privilege escalation", "CronJob", "coffer-mirror-nfs",
     lambda o: dc.pod_spec(o)["initContainers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation"),
    ("capabilities kept", "CronJob", "coffer-snapshot-chain",
     lambda o: dc.pod_spec(o)["containers"][0]["securityContext"].pop("capabilities"), "drop ALL"),
    ("no limits", "CronJob", "coffer-backup-postgres",
     lambda o: dc.pod_spec(o)["initContainers"][0]["resources"].pop("limits"), "no resources.limits.cpu"),
    ("literal password in env", "StatefulSet", "coffer-store",
     lambda o: dc.pod_spec(o)["containers"][0]["env"].append({"name": "COFFER_ROOT_PASSWORD", "value": "hunter2hunter2"}),
     "holds a literal secret"),
    ("key-like value in env", "CronJob", "coffer-backup-postgres",
     lambda o: dc.pod_spec(o)["initContainers"][1]["env"].append(
         {"name": "EXTRA", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}), "holds a literal secret"),
    ("access key in args", "Deployment", "coffer-console",
     lambda o: dc.pod_spec(o)["containers"][0]["args"].extend(["--access-key", "AKIAIOSFODNN7EXAMPLE"]),
     "looks like a secret"),
    ("unpinned image", "Deployment", "coffer-console",
     lambda o: dc.pod_spec(o)["containers"][0].update(image=dc.COFFER_IMAGE + ":latest"), "no pinned tag"),
    ("image not the overlay's", "CronJob", "coffer-mirror-nfs",
     lambda o: dc.pod_spec(o)["initContainers"][0].update(image=dc.COFFER_IMAGE + ":0.0.9"), "not pinned by the overlay"),
    ("a shell", "CronJob", "coffer-mirror-nfs",
     lambda o: dc.pod_spec(o)["initContainers"][0].update(command=["/bin/sh", "-c"]), "exec form"),
    ("overlapping runs", "CronJob", "coffer-snapshot-chain",
     lambda o: o["spec"].update(concurrencyPolicy="Allow"), "not Forbid"),
    ("no backoff limit", "CronJob", "coffer-mirror-nfs",
     lambda o: o["spec"]["jobTemplate"]["spec"].pop("backoffLimit"), "no backoffLimit"),
    ("token mounted", "Deployment", "coffer-console",
     lambda o: dc.pod_spec(o).update(automountServiceAccountToken=True), "automountServiceAccountToken"),
    ("account mounts tokens", "ServiceAccount", "coffer-jobs",
     lambda o: o.pop("automountServiceAccountToken"), "automountServiceAccountToken"),
    ("ingress without TLS", "Ingress", "coffer-console", lambda o: o["spec"].pop("tls"), "no TLS"),
]


@pytest.mark.parametrize("what,kind,name,change,expected", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_policy_refuses_a_broken_object(what, kind, name, change, expected, rendered):
    pins = dc.overlay_images(OVERLAY_DIRS["prod"])
    problems = dc.policy_problems(dc.mutated(rendered["prod"], kind, name, change), pins)
    assert any(expected in p for p in problems), problems


def test_policy_refuses_a_secret_object(rendered):
    objects = rendered["dev"] + [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "coffer-root"},
                                  "data": {"password": "aHVudGVyMg=="}}]
    problems = dc.policy_problems(objects, dc.overlay_images(OVERLAY_DIRS["dev"]))
    assert any("Secret/coffer-root" in p for p in problems), problems


SCHEMA_BREAKAGES = [
    ("unknown field", lambda o: dc.pod_spec(o)["containers"][0].update(livenessprobe={}), "unknown field 'livenessprobe'"),
    ("wrong type", lambda o: o["spec"].update(replicas="2"), "int expected"),
    ("required field missing", lambda o: dc.pod_spec(o)["containers"][0].pop("name"), "must not be `None`"),
    ("args not strings", lambda o: dc.pod_spec(o)["containers"][0]["args"].append(7), "str expected"),
]


@pytest.mark.parametrize("what,change,expected", SCHEMA_BREAKAGES, ids=[b[0] for b in SCHEMA_BREAKAGES])
def test_schema_check_refuses_a_broken_object(what, change, expected, rendered):
    problems = dc.schema_problems(dc.mutated(rendered["dev"], "Deployment", "coffer-console", change))
    assert any(expected in p for p in problems), problems


def prometheus_rules(objects):
    return [g for o in objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]]


def test_alert_rules_pass_promtool(rendered, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rules(rendered["prod"])}))
    p = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    alerts = {r["alert"] for g in prometheus_rules(rendered["prod"]) for r in g["rules"]}
    # The seed's list: store down, a job failed or not run on schedule, storage below 10 % and
    # 20 %, API p95 above 1 s, login failure spikes.
    assert {"CofferStoreDown", "CofferJobFailed", "CofferSnapshotFailed", "CofferChainSnapshotNotOnSchedule",
            "CofferBackupNotOnSchedule", "CofferStorageLow", "CofferStorageCritical", "CofferApiSlow",
            "CofferLoginFailureSpike"} <= alerts


def test_alert_rules_use_metrics_coffer_exports(rendered):
    source = []
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            if f.endswith(".c"):
                with open(os.path.join(d, f)) as fh:
                    source.append(fh.read())
    source = "\n".join(source)
    names = {m for g in prometheus_rules(rendered["prod"]) for r in g["rules"]
             for m in re.findall(r"\bcoffer_[a-z0-9_]+", r["expr"])}
    assert names, "the rules use coffer's metrics"
    missing = {n for n in names if f'"{n}' not in source and f"{n}{{" not in source and f" {n}" not in source}
    assert not missing, f"metrics no coffer source writes: {missing}"


# Made-up series run through the rules by promtool: each alert fires when it should and not
# otherwise (a rule that can never fire passes `check rules` just as well).
RULE_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'kubelet_volume_stats_available_bytes{persistentvolumeclaim="data-coffer-store-0"}'
        values: '15x30'
      - series: 'kubelet_volume_stats_capacity_bytes{persistentvolumeclaim="data-coffer-store-0"}'
        values: '100x30'
      - series: 'up{job="coffer-store"}'
        values: '1x10 0x20'
      - series: 'coffer_s3_request_duration_seconds_bucket{job="coffer-store",op="GetObject",le="0.5"}'
        values: '0+10x30'
      - series: 'coffer_s3_request_duration_seconds_bucket{job="coffer-store",op="GetObject",le="2"}'
        values: '0+100x30'
      - series: 'coffer_s3_request_duration_seconds_bucket{job="coffer-store",op="GetObject",le="+Inf"}'
        values: '0+100x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: CofferStorageLow
        exp_alerts:
          - exp_labels: {severity: warning, persistentvolumeclaim: data-coffer-store-0}
      - eval_time: 20m
        alertname: CofferStorageCritical
        exp_alerts: []
      - eval_time: 9m
        alertname: CofferStoreDown
        exp_alerts: []
      - eval_time: 17m
        alertname: CofferStoreDown
        exp_alerts:
          - exp_labels: {severity: critical, job: coffer-store}
      - eval_time: 20m
        alertname: CofferApiSlow
        exp_alerts:
          - exp_labels: {severity: warning}
  - interval: 1m
    input_series:
      - series: 'coffer_console_logins_total{result="wrong"}'
        values: '0+1x70 70+120x20'
      - series: 'coffer_snapshot_last_success_timestamp_seconds{job="coffer-snapshot-chain",command="create",namespace="noble"}'
        values: '0x100'
      - series: 'coffer_snapshot_last_success_timestamp_seconds{job="coffer-backup-postgres",command="create",namespace="app"}'
        values: '0x100'
      - series: 'coffer_mirror_last_success_timestamp_seconds{job="coffer-mirror-nfs"}'
        values: '0x100'
      - series: 'kube_job_status_failed{job_name="coffer-mirror-nfs-29000000",namespace="coffer"}'
        values: '0x50 1x10'
    alert_rule_test:
      - eval_time: 60m
        alertname: CofferLoginFailureSpike
        exp_alerts: []
      - eval_time: 85m
        alertname: CofferLoginFailureSpike
        exp_alerts:
          - exp_labels: {severity: warning}
      - eval_time: 55m
        alertname: CofferJobFailed
        exp_alerts:
          - exp_labels: {severity: critical, job_name: coffer-mirror-nfs-29000000, namespace: coffer}
      - eval_time: 40m
        alertname: CofferJobFailed
        exp_alerts: []
"""


def test_alerts_fire_on_made_up_series(rendered, tmp_path):
    # promtool compares annotations too: the rules without them, the tests judge labels only.
    groups = [dict(g, rules=[{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]])
              for g in prometheus_rules(rendered["prod"])]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(RULE_TESTS)
    p = subprocess.run(["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


# --- the CI workflow ----------------------------------------------------------------------------

def workflow():
    with open(os.path.join(ROOT, ".github", "workflows", "ci.yml")) as f:
        return yaml.safe_load(f)


def test_ci_workflow_runs_on_every_push_with_well_formed_jobs():
    wf = workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert on == "push" or "push" in on
    assert wf["jobs"]
    for name, job in wf["jobs"].items():
        assert isinstance(job.get("runs-on"), str), f"job {name}: no runs-on"
        assert job.get("steps"), f"job {name}: no steps"
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), f"job {name}: a step needs run or uses: {step}"
    runs = "\n".join(s["run"] for j in wf["jobs"].values() for s in j["steps"] if "run" in s)
    assert re.search(r"^make test\b", runs, re.M), "the workflow runs make test"
    assert "scripts/build-image.sh" in runs, "the workflow builds and tests the image"


def test_ci_workflow_runs_only_scripts_that_exist():
    wf = workflow()
    runs = "\n".join(s["run"] for j in wf["jobs"].values() for s in j["steps"] if "run" in s)
    scripts = set(re.findall(r"(?<![\w/.-])((?:scripts|tests|bench)/[\w./-]+\.(?:sh|py))", runs))
    assert scripts
    for s in sorted(scripts):
        assert os.path.isfile(os.path.join(ROOT, s)), f"ci.yml runs {s}, which is not in the repository"
    with open(os.path.join(ROOT, "Makefile")) as f:
        targets = set(re.findall(r"^([\w-]+):", f.read(), re.M))
    for t in re.findall(r"^\s*(?:sudo )?make ([\w-]+)", runs, re.M):
        assert t in targets, f"ci.yml runs make {t}, which the Makefile lacks"
