#!/usr/bin/python3
"""tools/chart-render against helm's behaviour on a chart made here (ctest label
packaging), for each point where a helm-like renderer could silently differ:
values.yaml numbers are float64 as in helm (1000000 prints as 1e+06 unless
`int`), --set integers are int64, user values coalesce over defaults (null
deletes), include/tpl/required/toYaml, helm's kind order and "# Source:" lines,
and what it does not implement is refused rather than rendered differently
(hooks, .Capabilities other than KubeVersion, subcharts, --set index syntax);
.Capabilities.KubeVersion and Chart.yaml's kubeVersion as helm's.

usage: chart_render_test.py CHART_RENDER
"""
import os
import subprocess
import sys
import tempfile

RENDER = sys.argv[1]
from checks import check, finish  # noqa: E402




def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


with tempfile.TemporaryDirectory() as tmp:
    c = os.path.join(tmp, "demo")
    write(f"{c}/Chart.yaml", "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\n")
    write(f"{c}/values.yaml", "big: 1000000\nport: 80\nlist: [a, b]\nnested: {keep: 1, drop: 2}\nname: web\n")
    write(f"{c}/templates/_helpers.tpl", '{{- define "demo.name" -}}{{ .Values.name }}-{{ .Chart.Name }}{{- end }}\n')
    write(f"{c}/templates/a-deploy.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "demo.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    release: {{ .Release.Name }}
    service: {{ .Release.Service }}
    version: {{ .Chart.AppVersion | quote }}
data:
  raw: {{ .Values.big }}
  int: {{ int .Values.big }}
  port: {{ .Values.port }}
  tpl: {{ tpl "{{ .Values.name }}!" . }}
  nested:
    {{- toYaml .Values.nested | nindent 4 }}
  list: {{ .Values.list | toJson }}
  missing: "{{ .Values.nothing }}"
""")
    write(f"{c}/templates/z-sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n")

    def run(*args, chart=c):
        return subprocess.run([RENDER, "rel", chart, "-n", "ns1", *args], capture_output=True, text=True)

    p = run()
    out = p.stdout
    check(p.returncode == 0, f"renders: {p.stderr.strip()}")
    check("raw: 1e+06" in out and "int: 1000000" in out, "values.yaml numbers are float64 as in helm (1e+06 without int)")
    check("name: web-demo" in out and "namespace: ns1" in out and "release: rel" in out and "service: Helm" in out
          and 'version: "4.5"' in out, "include, .Release, .Chart")
    check("tpl: web!" in out and 'list: ["a","b"]' in out and "    drop: 2\n    keep: 1" in out and 'missing: ""' in out,
          "tpl, toJson, toYaml (sorted keys), a missing value renders empty")
    docs = [d.split("\n")[0:4] for d in out.split("---\n")[1:]]
    kinds = [next(l for l in d if l.startswith("kind:")) for d in docs]
    check(kinds == ["kind: ServiceAccount", "kind: ConfigMap", "kind: Deployment"],
          f"helm's install order of kinds: {kinds}")
    check(out.startswith("---\n# Source: demo/templates/z-sa.yaml\napiVersion: v1"), "'---' and '# Source:' lines as helm template")
    p = run("--set", "port=8080", "--set", "nested.drop=null", "--set", "list={x,y,z}")
    check("port: 8080" in p.stdout and "drop" not in p.stdout and "keep: 1" in p.stdout and 'list: ["x","y","z"]' in p.stdout,
          "--set: int, null deletes a default, {a,b} lists")
    p = run("--set-string", "port=8080")
    check("port: 8080" in p.stdout, "--set-string")
    write(f"{tmp}/over.yaml", "nested:\n  keep: 9\n")
    p = run("-f", f"{tmp}/over.yaml")
    check("keep: 9" in p.stdout and "drop: 2" in p.stdout, "-f merges over defaults deeply")
    p = run("--set", "list[0]=q")
    check(p.returncode != 0 and "not supported by chart-render" in p.stderr, f"--set index syntax refused: {p.stderr.strip()}")

    write(f"{c}/templates/req.yaml", '{{ required "set .Values.must: it names the thing" .Values.must }}\n')
    p = run()
    check(p.returncode != 0 and "execution error at (demo/templates/req.yaml:1:3): set .Values.must: it names the thing" in p.stderr,
          f"required: helm's message form: {p.stderr.strip()}")
    os.unlink(f"{c}/templates/req.yaml")
    # .Capabilities.KubeVersion as helm's: --kube-version parsed like its
    # ParseKubeVersion, helm 3.17's default, semverCompare on it; the rest of
    # .Capabilities is refused (not faked).
    write(f"{c}/templates/cap.yaml", "v: {{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.KubeVersion.Major }}"
          " {{ .Capabilities.KubeVersion.Minor }} {{ .Capabilities.KubeVersion }}"
          " {{ semverCompare \">=1.30-0\" .Capabilities.KubeVersion.Version }}\n")
    p = run()
    check("v: v1.32.0 1 32 v1.32.0 true" in p.stdout, f"default kube version v1.32.0 (helm 3.17): {p.stdout.strip()[-60:]}")
    p = run("--kube-version", "1.20")
    check("v: v1.20.0 1 20 v1.20.0 false" in p.stdout, f"--kube-version 1.20 is v1.20.0: {p.stdout.strip()[-60:]}")
    p = run("--kube-version=v1.30.2")
    check("v: v1.30.2 1 30 v1.30.2 true" in p.stdout, f"--kube-version=v1.30.2: {p.stdout.strip()[-60:]}")
    p = run("--kube-version", "one.twenty")
    check(p.returncode != 0 and "invalid kube version 'one.twenty'" in p.stderr, f"bad --kube-version refused: {p.stderr.strip()}")
    write(f"{c}/templates/cap.yaml", "v: {{ .Capabilities.APIVersions }}\n")
    p = run()
    check(p.returncode != 0 and "APIVersions" in p.stderr, f".Capabilities.APIVersions refused: {p.stderr.strip()[:160]}")
    os.unlink(f"{c}/templates/cap.yaml")
    # Chart.yaml's kubeVersion, in helm's words.
    write(f"{c}/Chart.yaml", "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\nkubeVersion: \">=1.22.0-0\"\n")
    p = run("--kube-version", "1.21.3")
    check(p.returncode != 0 and "chart requires kubeVersion: >=1.22.0-0 which is incompatible with Kubernetes v1.21.3"
          in p.stderr, f"kubeVersion refuses 1.21.3: {p.stderr.strip()}")
    check(run("--kube-version", "1.22").returncode == 0 and run().returncode == 0, "kubeVersion accepts 1.22 and the default")
    write(f"{c}/Chart.yaml", "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\n")
    write(f"{c}/templates/hook.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations:\n    helm.sh/hook: test\n")
    p = run()
    check(p.returncode != 0 and "hooks are not supported" in p.stderr, f"hooks refused: {p.stderr.strip()}")
    os.unlink(f"{c}/templates/hook.yaml")
    os.makedirs(f"{c}/charts")
    p = run()
    check(p.returncode != 0 and "subcharts" in p.stderr, f"subcharts refused: {p.stderr.strip()}")

finish()
