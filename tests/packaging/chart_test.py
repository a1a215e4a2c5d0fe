#!/usr/bin/python3
"""charts/pwru checks (ctest label packaging), with chart-render standing in for helm:

- manifests/pwru.yaml is the default render for Kubernetes 1.20 (release pwru,
  namespace pwru), certificate data normalized (scripts/chart-normalize.sh);
- every committed manifest and renders with non-default values, each for
  Kubernetes 1.20 and for chart-render's default (current) version, pass the
  Kubernetes API schemas (tools/k8s-validate, kubernetes-models); the 1.20
  renders have no field unknown to Kubernetes 1.20's OpenAPI spec (when one is
  on this machine: the k8s layer's cache, or $PWRU_K8S_OPENAPI_1_20) and none
  of the fields added later that the chart could carry;
- what differs by version (AppArmor) is chosen at 1.30, and a version below
  Chart.yaml's kubeVersion is refused;
- the objects carry what pwru-agent and kubectl-pwru need (labels, port names,
  probes, mounts, Secret names and keys), the agent flags exist in the built
  pwru-agent, the plugin's defaults are the chart's;
- the generated certificates chain, name pwru-agent and the client identity;
- bad values are refused by values.schema.json with a message naming the value;
- the chart's version is CMake's project version.

usage: chart_test.py SOURCE_DIR CHART_RENDER [PWRU_AGENT KUBECTL_PWRU]
"""
import base64
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC, RENDER = sys.argv[1], sys.argv[2]
AGENT = sys.argv[3] if len(sys.argv) > 3 else ""
PLUGIN = sys.argv[4] if len(sys.argv) > 4 else ""
CHART = os.path.join(SRC, "charts/pwru")
VALIDATE = os.path.join(SRC, "tools/k8s-validate/validate.mjs")
from checks import check, finish  # noqa: E402
from openapi_fields import Spec, find_spec_1_20  # noqa: E402

LOWEST = "1.20.0"  # Chart.yaml's kubeVersion floor, and what manifests/pwru.yaml is rendered for




def render(*args, ns="pwru", expect_ok=True, kube=LOWEST):
    kube_args = ["--kube-version", kube] if kube else []
    p = subprocess.run([RENDER, "pwru", CHART, "--namespace", ns, *kube_args, *args], capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        raise SystemExit(f"FAIL render {' '.join(args)}: {p.stderr.strip()}")
    return p


def normalize(text):
    return subprocess.run([os.path.join(SRC, "scripts/chart-normalize.sh")], input=text, capture_output=True,
                          text=True, check=True).stdout


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d]


def find(objs, kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    return None


to_validate = {}  # what -> YAML text; validated in one node process at the end of this section


def validate(text, what):
    to_validate[what] = text


# ---- manifests/ in sync with the chart ------------------------------------------------
default = render().stdout
with open(os.path.join(SRC, "manifests/pwru.yaml")) as f:
    committed = f.read()
if not check(normalize(default) == committed,
             "manifests/pwru.yaml is the chart's default render for Kubernetes 1.20 (else run scripts/render-manifests.sh)"):
    d = subprocess.run(["diff", "-u", os.path.join(SRC, "manifests/pwru.yaml"), "-"], input=normalize(default),
                       capture_output=True, text=True)
    print(d.stdout[:4000])

# ---- schemas: committed manifests and renders with other values -------------------------
for name in sorted(os.listdir(os.path.join(SRC, "manifests"))):
    if name.endswith(".yaml"):
        # The committed file's placeholders are not base64: validate the real render's form.
        text = open(os.path.join(SRC, "manifests", name)).read().replace("<generated>", "Z2VuZXJhdGVk")
        validate(text, "manifests/" + name)
variants = {
    "defaults": [],
    "cert-manager, own CA": ["--set", "tls.method=certmanager"],
    "cert-manager, ClusterIssuer": ["--set", "tls.method=certmanager", "--set", "tls.certManager.issuerRef.name=corp-ca",
                                    "--set", "tls.certManager.issuerRef.kind=ClusterIssuer"],
    "existing Secrets": ["--set", "tls.method=existing"],
    "privileged": ["--set", "securityContext.privileged=true"],
    "RBAC mode": ["--set", "authz.mode=rbac"],
    "CRI-O": ["--set", "cri.runtime=crio"],
    "k3s": ["--set", "cri.runtime=k3s"],
    "custom socket": ["--set", "cri.runtime=custom", "--set", "cri.socket=/run/x/cri.sock"],
    "pod network, debugfs, extra args": ["--set", "hostNetwork=false", "--set", "mountDebugfs=true",
                                         "--set", "agent.extraArgs={--debug}", "--set", "priorityClassName=system-node-critical"],
}
renders = {}
current_renders = {}  # for chart-render's default version (helm 3.17's: v1.32.0)
for what, args in variants.items():
    renders[what] = render(*args).stdout
    validate(renders[what], f"render for {LOWEST} with " + what)
    current_renders[what] = render(*args, kube=None).stdout
    validate(current_renders[what], "render for the default version with " + what)
with tempfile.TemporaryDirectory() as tmp:
    paths = {}
    for i, (what, text) in enumerate(to_validate.items()):
        paths[what] = os.path.join(tmp, f"{i}.yaml")
        with open(paths[what], "w") as f:
            f.write(text)
    p = subprocess.run(["node", VALIDATE, *paths.values()], capture_output=True, text=True)
    for what, path in paths.items():
        errors = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith(path + ":")]
        check(not errors and p.returncode in (0, 1), f"Kubernetes API schemas: {what} {errors}")
    check(p.returncode == 0, f"validator: {p.stdout.strip().splitlines()[-1:]} {p.stderr.strip()[:500]}")

# ---- Kubernetes versions: 1.20 through current ---------------------------------------------
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/pwru-agent"


def agent_pod(text):
    return find(objects(text), "DaemonSet", "pwru-agent")["spec"]["template"]


def apparmor_of(text):
    tpl = agent_pod(text)
    return (tpl["metadata"].get("annotations", {}).get(APPARMOR_ANNOTATION),
            tpl["spec"]["containers"][0]["securityContext"].get("appArmorProfile"))


for kube, want in (("1.20.0", ("unconfined", None)), ("v1.29.15", ("unconfined", None)),
                   ("1.30", (None, {"type": "Unconfined"})), (None, (None, {"type": "Unconfined"}))):
    got = apparmor_of(render(kube=kube).stdout)
    check(got == want, f"AppArmor for Kubernetes {kube or 'the default version'}: "
                       f"{'the annotation' if want[0] else 'securityContext.appArmorProfile'} (got {got})")
for what, text in renders.items():
    check(apparmor_of(text)[1] is None, f"render for {LOWEST} with {what}: no securityContext.appArmorProfile")
local = render("--set", "securityContext.appArmorProfile.type=Localhost",
               "--set", "securityContext.appArmorProfile.localhostProfile=pwru-agent").stdout
check(apparmor_of(local) == ("localhost/pwru-agent", None), f"a Localhost profile as the annotation: {apparmor_of(local)}")
check(apparmor_of(render("--set", "securityContext.appArmorProfile=null").stdout) == (None, None),
      "appArmorProfile: null: neither annotation nor field")
p = render(kube="1.19.16", expect_ok=False)
check(p.returncode != 0 and p.stdout == "" and
      "chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.16" in p.stderr,
      f"a version below Chart.yaml's kubeVersion is refused as helm does: {p.stderr.strip()}")

# Fields added to the API after 1.20 that objects like these could carry:
# none in a render for 1.20 (checked even without a 1.20 spec here).
NEWER_THAN_1_20 = [re.compile(r) for r in (
    r"\.appArmorProfile$",                                                    # 1.30
    r"^spec\.template\.spec\.(hostUsers|os|schedulingGates|resourceClaims|resources)$",  # 1.23..1.32
    r"\.(initContainers|containers)\[\d+\]\.(resizePolicy|restartPolicy)$",  # 1.27, 1.28 (sidecars)
    r"\.(livenessProbe|readinessProbe|startupProbe)\.grpc$",                 # 1.23
    r"\.lifecycle\.(postStart|preStop)\.sleep$",                             # 1.29
    r"\.securityContext\.(supplementalGroupsPolicy|seLinuxChangePolicy)$",    # 1.31, 1.32
    r"^spec\.updateStrategy\.rollingUpdate\.maxSurge$",                      # DaemonSet: 1.21
    r"^spec\.(internalTrafficPolicy|trafficDistribution)$",                   # Service: 1.21, 1.30
)]


def field_paths(value, where=""):
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{where}.{k}" if where else k
            yield path
            yield from field_paths(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from field_paths(v, f"{where}[{i}]")


for what, text in renders.items():
    found = [f"{o['kind']}: {p}" for o in objects(text) for p in field_paths(o) if any(r.search(p) for r in NEWER_THAN_1_20)]
    check(not found, f"render for {LOWEST} with {what}: no field newer than Kubernetes 1.20 ({found})")
found = [p for p in field_paths(find(objects(current_renders["defaults"]), "DaemonSet", "pwru-agent"))
         if any(r.search(p) for r in NEWER_THAN_1_20)]
check(found == ["spec.template.spec.containers[0].securityContext.appArmorProfile"],
      f"the newer-field check finds the 1.30 field in a current render ({found})")
spec_path = find_spec_1_20()
if spec_path:
    spec_1_20 = Spec(spec_path)
    for what, text in list(renders.items()) + [("manifests/pwru.yaml", committed)]:
        unknown = [f"{o['kind']}/{o['metadata']['name']}: {f}" for o in objects(text.replace("<generated>", "Z2Vu"))
                   if spec_1_20.knows(o) for f in spec_1_20.unknown_fields(o)]
        check(not unknown, f"Kubernetes 1.20's OpenAPI spec knows every field of the render for {LOWEST} with {what} "
                           f"({unknown})")
    # And the check can fail: the current render's field is unknown to 1.20.
    cur_unknown = spec_1_20.unknown_fields(find(objects(current_renders["defaults"]), "DaemonSet", "pwru-agent"))
    check(cur_unknown == ["spec.template.spec.containers[0].securityContext.appArmorProfile"],
          f"the 1.20 spec check finds the 1.30 field in a current render ({cur_unknown})")
else:
    print("NOTE: no OpenAPI spec of Kubernetes 1.20 here (set PWRU_K8S_OPENAPI_1_20, or run the k8s layer once): "
          "renders for 1.20 checked against the list of newer fields only")

# ---- what the agent and the plugin need ---------------------------------------------------
objs = objects(default)
ds = find(objs, "DaemonSet", "pwru-agent")
pod = ds["spec"]["template"]
spec = pod["spec"]
c = spec["containers"][0]
args = c["args"]
flag = {a.split("=", 1)[0]: (a.split("=", 1) + [""])[1] for a in args}
check(pod["metadata"]["labels"].get("app.kubernetes.io/name") == "pwru-agent",
      "agent pods carry app.kubernetes.io/name=pwru-agent (kubectl pwru's --agent-selector)")
check(all(pod["metadata"]["labels"].get(k) == v for k, v in ds["spec"]["selector"]["matchLabels"].items()),
      "the DaemonSet's selector matches its pods")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("https") == int(flag["--listen"].rsplit(":", 1)[1]), "container port `https` is the agent's --listen port")
check(ports.get("health") == int(flag["--health-listen"].rsplit(":", 1)[1]), "container port `health` is --health-listen")
check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}, "liveness probe: /healthz on health")
check(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}, "readiness probe: /readyz on health")
check(spec["hostPID"] is True, "hostPID (pod netns are /proc/PID/ns/net of host processes)")
check(spec.get("tolerations") == [{"operator": "Exists"}], "tolerates every taint")
check(any(e["name"] == "NODE_NAME" and e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName" for e in c["env"])
      and flag["--node-name"] == "$(NODE_NAME)", "node name from the downward API")
mounts = {m["name"]: m for m in c["volumeMounts"]}
vols = {v["name"]: v for v in spec["volumes"]}
check(mounts["netns"].get("mountPropagation") == "HostToContainer", "netns mount propagates new netns (HostToContainer)")
check(vols["btf"]["hostPath"]["path"] == "/sys/kernel/btf" and vols["tracefs"]["hostPath"]["path"] == "/sys/kernel/tracing",
      "host BTF and tracefs mounted")
check(flag["--cri-socket"] == "/run/containerd/containerd.sock" == vols["cri-socket"]["hostPath"]["path"]
      == mounts["cri-socket"]["mountPath"], "containerd socket by default, mounted where --cri-socket says")
check(vols["tls"]["secret"]["secretName"] == "pwru-agent-tls" and flag["--tls-cert"].startswith(mounts["tls"]["mountPath"]),
      "server certificate from Secret pwru-agent-tls")
sc = c["securityContext"]
check(sc["capabilities"]["drop"] == ["ALL"] and {"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN"} <= set(sc["capabilities"]["add"])
      and sc["privileged"] is False, "not privileged: drop ALL, add BPF PERFMON NET_ADMIN SYS_ADMIN ...")
cm = find(objs, "ConfigMap", "pwru-agent-authz")
check(cm is not None and yaml.safe_load(cm["data"]["authz.json"]) ==
      {"clients": [{"identity": "kubectl-pwru", "namespaces": ["*"], "node": True}]},
      "authz ConfigMap holds the clients of values.yaml as the agent's JSON")
for name in ("pwru-agent-tls", "pwru-client-tls"):
    s = find(objs, "Secret", name)
    check(s is not None and set(s["data"]) == {"tls.crt", "tls.key", "ca.crt"}, f"Secret {name} has tls.crt tls.key ca.crt")

rbac = objects(renders["RBAC mode"])
rds = find(rbac, "DaemonSet", "pwru-agent")
rargs = rds["spec"]["template"]["spec"]["containers"][0]["args"]
role = find(rbac, "ClusterRole", "pwru-agent")
check(role is not None and {(r["resources"][0], r["verbs"][0]) for r in role["rules"]} ==
      {("tokenreviews", "create"), ("subjectaccessreviews", "create")}, "RBAC mode: ClusterRole creates token/subjectaccess reviews")
check(find(rbac, "ClusterRoleBinding", "pwru-agent")["subjects"][0]["name"] == "pwru-agent", "RBAC mode: bound to the agent's ServiceAccount")
check("--kube-api=https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)" in rargs
      and not any(a.startswith("--authz-config") for a in rargs)
      and rds["spec"]["template"]["spec"]["automountServiceAccountToken"] is True,
      "RBAC mode: --kube-api, no authz file, service account token mounted")
priv = find(objects(renders["privileged"]), "DaemonSet", "pwru-agent")["spec"]["template"]["spec"]["containers"][0]
check(priv["securityContext"]["privileged"] is True and "capabilities" not in priv["securityContext"], "privileged switch")
cmo = objects(renders["cert-manager, own CA"])
certs = {o["metadata"]["name"]: o for o in cmo if o["kind"] == "Certificate"}
check(certs["pwru-agent"]["spec"]["secretName"] == "pwru-agent-tls" and "pwru-agent" in certs["pwru-agent"]["spec"]["dnsNames"]
      and certs["pwru-client"]["spec"]["secretName"] == "pwru-client-tls"
      and certs["pwru-client"]["spec"]["commonName"] == "kubectl-pwru"
      and not any(o["kind"] == "Secret" for o in cmo), "cert-manager: Certificates into the fixed Secrets, no Secret rendered")
cmi = objects(renders["cert-manager, ClusterIssuer"])
check(all(o["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"} for o in cmi if o["kind"] == "Certificate")
      and not any(o["kind"] == "Issuer" for o in cmi), "cert-manager with your ClusterIssuer: no own CA")
check(not any(o["kind"] in ("Secret", "Certificate") for o in objects(renders["existing Secrets"])),
      "existing Secrets: the chart makes none")
crio = find(objects(renders["CRI-O"]), "DaemonSet", "pwru-agent")["spec"]["template"]["spec"]["containers"][0]["args"]
check("--cri-socket=/var/run/crio/crio.sock" in crio, "CRI-O preset socket")
k3s = find(objects(renders["k3s"]), "DaemonSet", "pwru-agent")["spec"]["template"]["spec"]["containers"][0]["args"]
check("--cri-socket=/run/k3s/containerd/containerd.sock" in k3s, "k3s preset socket")

# The agent understands every flag the chart passes (its --help lists them).
if AGENT:
    help_text = subprocess.run([AGENT, "--help"], capture_output=True, text=True).stdout
    unknown = [f for f in flag if f.startswith("--") and f not in help_text]
    unknown += [a.split("=")[0] for a in rargs if a.startswith("--kube-api") and "--kube-api" not in help_text]
    check(not unknown, f"pwru-agent knows every flag the chart passes (unknown: {unknown})")
# kubectl pwru's defaults are the chart's names.
if PLUGIN:
    ph = subprocess.run([PLUGIN, "--help"], capture_output=True, text=True).stdout
    check(re.search(r"--agent-namespace TEXT=pwru\s", ph) is not None, "kubectl pwru --agent-namespace defaults to pwru")
    check(re.search(r"--agent-selector TEXT=app\.kubernetes\.io/name=pwru-agent\s", ph) is not None,
          "kubectl pwru --agent-selector defaults to app.kubernetes.io/name=pwru-agent")
    check(re.search(r"--agent-server-name TEXT=pwru-agent\s", ph) is not None,
          "kubectl pwru --agent-server-name defaults to pwru-agent (the chart's tls.serverName)")

# ---- the generated certificates (the chart's, and manifests/install.sh's) ----------------------
def check_certs(objs, who):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("pwru-agent-tls", "pwru-client-tls"):
            os.makedirs(os.path.join(tmp, name))
            for k, v in find(objs, "Secret", name)["data"].items():
                with open(os.path.join(tmp, name, k), "wb") as f:
                    f.write(base64.b64decode(v))

        def ossl(*a):
            return subprocess.run(["openssl", *a], capture_output=True, text=True)

        srv, cli = os.path.join(tmp, "pwru-agent-tls"), os.path.join(tmp, "pwru-client-tls")
        check(open(f"{srv}/ca.crt").read() == open(f"{cli}/ca.crt").read(), f"{who}: both Secrets carry the same CA")
        v = ossl("verify", "-CAfile", f"{srv}/ca.crt", "-purpose", "sslserver", "-verify_hostname", "pwru-agent", f"{srv}/tls.crt")
        check(v.returncode == 0, f"{who}: server certificate: signed by the CA, for pwru-agent: {v.stdout.strip()} {v.stderr.strip()}")
        v = ossl("verify", "-CAfile", f"{cli}/ca.crt", "-purpose", "sslclient", f"{cli}/tls.crt")
        check(v.returncode == 0, f"{who}: client certificate: signed by the CA, for client auth: {v.stdout.strip()} {v.stderr.strip()}")
        subj = ossl("x509", "-in", f"{cli}/tls.crt", "-noout", "-subject").stdout
        check("CN = kubectl-pwru" in subj, f"{who}: client certificate CN is kubectl-pwru (authz.clients' identity): {subj.strip()}")
        san = ossl("x509", "-in", f"{srv}/tls.crt", "-noout", "-ext", "subjectAltName").stdout
        check("DNS:pwru-agent.pwru.svc.cluster.local" in san, f"{who}: server certificate names the Service: {san.strip()}")
        for d in (srv, cli):
            m1 = ossl("x509", "-in", f"{d}/tls.crt", "-noout", "-pubkey").stdout
            m2 = ossl("pkey", "-in", f"{d}/tls.key", "-pubout").stdout
            check(m1 and m1 == m2, f"{who}: {os.path.basename(d)}: tls.key is tls.crt's key")



check_certs(objs, "chart")
installed = subprocess.run([os.path.join(SRC, "manifests/install.sh"), "--dry-run"], capture_output=True, text=True)
check(installed.returncode == 0, f"manifests/install.sh --dry-run fills the Secrets {installed.stderr.strip()}")
if installed.returncode == 0:
    check_certs(objects(installed.stdout), "manifests/install.sh")
    check(normalize(installed.stdout) == committed, "manifests/install.sh changes nothing but the certificate data")

# ---- values.schema.json refuses bad values with a clear message ------------------------------
bad = {
    "unknown TLS method": (["--set", "tls.method=vault"], "tls.method: tls.method must be one of the following"),
    "misspelt key": (["--set", "agent.prot=1"], "Additional property prot is not allowed"),
    "port out of range": (["--set", "agent.port=70000"], "agent.port: Must be less than or equal to 65535"),
    "custom runtime without socket": (["--set", "cri.runtime=custom"], "cri.socket"),
    "socket without custom runtime": (["--set", "cri.socket=/x.sock"], "cri.socket"),
    "CAP_ prefix": (["--set", "securityContext.capabilities={CAP_BPF}"], "securityContext.capabilities.0"),
    "--set index syntax (not implemented: refused, not misread)": (["--set", "authz.clients[0].identity=x"], "not supported by chart-render"),
    "string for a boolean": (["--set-string", "hostNetwork=yes"], "hostNetwork: Invalid type. Expected: boolean, given: string"),
}
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("authz:\n  clients:\n    - identity: alice\n      namespace: [shop]\n")
bad["authz client with a misspelt key (-f)"] = (["-f", f.name], "Additional property namespace is not allowed")
for what, (args, message) in bad.items():
    p = render(*args, expect_ok=False)
    check(p.returncode != 0 and message in p.stderr and p.stdout == "",
          f"refused: {what}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else 'NOT REFUSED'}")
os.unlink(f.name)

# ---- NOTES.txt, version -------------------------------------------------------------------------
notes = render("--notes").stdout
check("kubectl -n pwru get secret pwru-client-tls" in notes and "kubectl pwru -n default pod/NAME --tls-dir ./pwru-client" in notes,
      "NOTES.txt tells how to get the client certificate and run kubectl pwru")
other = render("--notes", ns="tracing").stdout
check("--agent-namespace tracing" in other, "NOTES.txt adds --agent-namespace outside namespace pwru")
cmake_version = re.search(r"project\(pwru-k8s VERSION ([0-9.]+)", open(os.path.join(SRC, "CMakeLists.txt")).read()).group(1)
chart = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))
check(chart["version"] == chart["appVersion"] == cmake_version, f"Chart version/appVersion = CMake's {cmake_version}")

finish()
