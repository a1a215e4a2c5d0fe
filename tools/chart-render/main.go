// chart-render renders a Helm chart the way `helm template` does, for the
// subset of Helm that charts/pwru uses, so that the test suite can render the
// chart on a machine without helm (Debian packages neither helm nor its Go
// module). It is NOT helm: the kind e2e workflow renders, lints and installs
// the chart with real helm and diffs that render against manifests/ too.
//
// Same as helm 3 (v3.17 source read for each point):
//   - values: values.yaml, then -f files, then --set, coalesced like helm
//     (maps merged deeply, null deletes a key); YAML numbers become float64
//     as with sigs.k8s.io/yaml, --set integers int64;
//   - values.schema.json validated with xeipuuv/gojsonschema and reported as
//     helm reports it;
//   - text/template with sprig v3 (minus env/expandenv) plus toYaml, fromYaml,
//     toJson, fromJson, include, tpl, required, fail, lookup (empty, as in
//     `helm template`); missingkey=zero and "<no value>" removed;
//   - .Values, .Release (Name, Namespace, Service, IsInstall, IsUpgrade,
//     Revision), .Chart (Chart.yaml), .Template;
//   - .Capabilities.KubeVersion (Version, Major, Minor, String, GitVersion)
//     from --kube-version, parsed as helm's ParseKubeVersion does ("1.20" ->
//     "v1.20.0"); without it helm 3.17's default, v1.32.0 (the client-go its
//     release binaries are built with: the kind e2e workflow's HELM_VERSION);
//   - Chart.yaml's kubeVersion checked against it, refused in helm's words;
//   - output: templates/ files in path order, split into documents, sorted by
//     helm's install order of kinds, each "---\n# Source: CHART/templates/F".
//
// Refused, so that a render never silently differs from helm's: subcharts
// (charts/ or dependencies), hooks, .Files, .Capabilities.APIVersions and
// .HelmVersion (template errors), --set with [index] syntax, toToml. Build (offline, Debian's Go packages, GOPATH mode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o chart-render ./tools/chart-render
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver" // v3 (Debian's golang-github-masterminds-semver-dev), as sprig's semverCompare
	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
	"github.com/xeipuuv/gojsonschema"
)

type values = map[string]interface{}

// chartMeta holds Chart.yaml's fields under the names templates use (.Chart.Name, ...).
type chartMeta struct {
	APIVersion   string            `json:"apiVersion"`
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Description  string            `json:"description,omitempty"`
	Type         string            `json:"type,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Dependencies []interface{}     `json:"dependencies,omitempty"`
}

type options struct {
	release, chartDir, namespace string
	kubeVersion                  string
	valueFiles, sets, setStrings []string
	notes                        bool
}

// defaultKubeVersion is what helm 3.17's release binaries assume without
// --kube-version (chartutil.DefaultCapabilities, from their client-go v0.32).
const defaultKubeVersion = "v1.32.0"

// kubeVersion is helm's chartutil.KubeVersion: templates read .Version (or
// .GitVersion, deprecated) and compare it with semverCompare.
type kubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (k kubeVersion) String() string     { return k.Version }
func (k kubeVersion) GitVersion() string { return k.Version }

// capabilities holds only what chart-render implements of helm's
// chartutil.Capabilities: a template reading anything else fails.
type capabilities struct {
	KubeVersion kubeVersion
}

var kubeVersionRe = regexp.MustCompile(`^v?([0-9]+)\.([0-9]+)(\.([0-9]+))?`)

// parseKubeVersion is helm's ParseKubeVersion (k8s.io/apimachinery's
// ParseGeneric): major.minor[.patch] with an optional "v"; the patch
// defaults to 0 and what follows it is ignored.
func parseKubeVersion(v string) (kubeVersion, error) {
	m := kubeVersionRe.FindStringSubmatch(v)
	if m == nil {
		return kubeVersion{}, fmt.Errorf("invalid kube version '%s': could not parse '%s' as version (give e.g. 1.20 or v1.30.2)", v, v)
	}
	patch := m[4]
	if patch == "" {
		patch = "0"
	}
	major, _ := strconv.ParseUint(m[1], 10, 32)
	minor, _ := strconv.ParseUint(m[2], 10, 32)
	p, _ := strconv.ParseUint(patch, 10, 32)
	return kubeVersion{
		Version: fmt.Sprintf("v%d.%d.%d", major, minor, p),
		Major:   strconv.FormatUint(major, 10),
		Minor:   strconv.FormatUint(minor, 10),
	}, nil
}

// checkKubeVersion refuses a version outside Chart.yaml's kubeVersion range,
// as helm install/template do (chartutil.IsCompatibleRange).
func checkKubeVersion(constraint string, kv kubeVersion) error {
	if constraint == "" {
		return nil
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return fmt.Errorf("Chart.yaml: kubeVersion %q is not a version range: %v", constraint, err)
	}
	v, err := semver.NewVersion(kv.Version)
	if err != nil || !c.Check(v) {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", constraint, kv.Version)
	}
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: chart-render [-n NAMESPACE] [--kube-version V] [-f VALUES.yaml]... [--set K=V]... [--set-string K=V]... [--notes] RELEASE CHART_DIR")
	os.Exit(2)
}

func parseArgs(args []string) options {
	o := options{namespace: "default", kubeVersion: defaultKubeVersion}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 >= len(args) {
				fmt.Fprintf(os.Stderr, "chart-render: %s needs a value\n", a)
				usage()
			}
			i++
			return args[i]
		}
		switch {
		case a == "-n" || a == "--namespace":
			o.namespace = next()
		case strings.HasPrefix(a, "--namespace="):
			o.namespace = strings.TrimPrefix(a, "--namespace=")
		case a == "--kube-version":
			o.kubeVersion = next()
		case strings.HasPrefix(a, "--kube-version="):
			o.kubeVersion = strings.TrimPrefix(a, "--kube-version=")
		case a == "-f" || a == "--values":
			o.valueFiles = append(o.valueFiles, next())
		case a == "--set":
			o.sets = append(o.sets, next())
		case a == "--set-string":
			o.setStrings = append(o.setStrings, next())
		case a == "--notes":
			o.notes = true
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "chart-render: unknown option %s (chart-render implements only what charts/pwru needs; use helm for more)\n", a)
			usage()
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		usage()
	}
	o.release, o.chartDir = pos[0], pos[1]
	return o
}

func main() {
	o := parseArgs(os.Args[1:])
	out, err := render(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func render(o options) (string, error) {
	meta, err := loadChartMeta(o.chartDir)
	if err != nil {
		return "", err
	}
	if len(meta.Dependencies) > 0 {
		return "", errors.New("chart dependencies are not supported by chart-render; use helm")
	}
	if _, err := os.Stat(filepath.Join(o.chartDir, "charts")); err == nil {
		return "", errors.New("subcharts (charts/) are not supported by chart-render; use helm")
	}
	kv, err := parseKubeVersion(o.kubeVersion)
	if err != nil {
		return "", err
	}
	if err := checkKubeVersion(meta.KubeVersion, kv); err != nil {
		return "", err
	}
	vals, err := loadValues(o)
	if err != nil {
		return "", err
	}
	if err := validateSchema(o.chartDir, meta.Name, vals); err != nil {
		return "", err
	}
	top := values{
		"Values":       vals,
		"Chart":        meta,
		"Capabilities": capabilities{KubeVersion: kv},
		"Release": values{
			"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
	}
	files, err := renderTemplates(o.chartDir, meta.Name, top)
	if err != nil {
		return "", err
	}
	notesName := meta.Name + "/templates/NOTES.txt"
	if o.notes {
		return files[notesName], nil
	}
	delete(files, notesName)
	return sortedManifests(files)
}

func loadChartMeta(dir string) (*chartMeta, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a chart: %v", dir, err)
	}
	var m chartMeta
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	if m.Name == "" || m.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	return &m, nil
}

// readYAMLValues reads a values file as helm's ReadValues does (sigs.k8s.io/yaml:
// YAML -> JSON -> interface{}, so numbers are float64).
func readYAMLValues(file string) (values, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v := values{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %v", file, err)
	}
	if v == nil {
		v = values{}
	}
	return v, nil
}

func loadValues(o options) (values, error) {
	defaults, err := readYAMLValues(filepath.Join(o.chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	user := values{}
	for _, f := range o.valueFiles {
		v, err := readYAMLValues(f)
		if err != nil {
			return nil, err
		}
		user = mergeMaps(user, v)
	}
	for _, s := range o.sets {
		if err := parseSet(s, user, false); err != nil {
			return nil, err
		}
	}
	for _, s := range o.setStrings {
		if err := parseSet(s, user, true); err != nil {
			return nil, err
		}
	}
	return coalesce(user, defaults), nil
}

// mergeMaps is helm's merge of -f files and --set: maps deeply, the rest replaced.
func mergeMaps(a, b values) values {
	out := make(values, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(bv, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce is helm's CoalesceValues for one chart: the user's values win,
// maps are merged key by key, and a user's null removes the key.
func coalesce(user, defaults values) values {
	for k, dv := range defaults {
		uv, present := user[k]
		if !present {
			user[k] = dv
			continue
		}
		if uv == nil {
			delete(user, k)
			continue
		}
		um, uok := uv.(map[string]interface{})
		dm, dok := dv.(map[string]interface{})
		if uok && dok {
			user[k] = coalesce(um, dm)
		}
	}
	// A null the user gave for a key without a default is dropped too.
	for k, v := range user {
		if v == nil {
			delete(user, k)
		}
	}
	return user
}

var setIntRe = regexp.MustCompile(`^(0|[1-9][0-9]*|-[1-9][0-9]*)$`)

// parseSet handles helm's --set a.b.c=value[,x.y=value] with {a,b} lists and
// backslash escapes. Typed like helm's strvals: true/false, null, integers
// (int64), else strings. Index syntax (a[0]) is refused.
func parseSet(s string, into values, asString bool) error {
	for _, pair := range splitUnescaped(s, ',', true) {
		eq := indexUnescaped(pair, '=')
		if eq < 0 {
			return fmt.Errorf("failed parsing --set data: key %q has no value", pair)
		}
		key, raw := pair[:eq], pair[eq+1:]
		if strings.ContainsAny(key, "[]") {
			return fmt.Errorf("--set %s: list index syntax is not supported by chart-render; use -f", pair)
		}
		var val interface{}
		if !asString && strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			var list []interface{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					list = append(list, typedSetValue(unescape(item), false))
				}
			}
			val = list
		} else {
			val = typedSetValue(unescape(raw), asString)
		}
		parts := splitUnescaped(key, '.', false)
		m := into
		for i, p := range parts {
			p = unescape(p)
			if i == len(parts)-1 {
				m[p] = val
				break
			}
			child, ok := m[p].(map[string]interface{})
			if !ok {
				child = values{}
				m[p] = child
			}
			m = child
		}
	}
	return nil
}

func typedSetValue(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if setIntRe.MatchString(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return s
}

// splitUnescaped splits on sep outside backslash escapes (and, for the top
// level of --set, outside {...} lists).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case braces && s[i] == '{':
			depth++
		case braces && s[i] == '}':
			depth--
		case s[i] == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		} else if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// validateSchema checks the coalesced values as helm's ValidateAgainstSchema does.
func validateSchema(dir, name string, vals values) error {
	schema, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	js, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	res, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(js))
	if err != nil {
		return fmt.Errorf("values.schema.json: %v", err)
	}
	if res.Valid() {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("values don't meet the specifications of the schema(s) in the following chart(s):\n")
	sb.WriteString(name + ":\n")
	for _, e := range res.Errors() {
		sb.WriteString(fmt.Sprintf("- %s\n", e))
	}
	return errors.New(sb.String())
}

func renderTemplates(dir, chartName string, top values) (map[string]string, error) {
	tplDir := filepath.Join(dir, "templates")
	srcs := map[string]string{}
	err := filepath.WalkDir(tplDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		srcs[path.Join(chartName, filepath.ToSlash(rel))] = string(data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// helm parses shallower paths first, then by name.
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ci, cj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if ci != cj {
			return ci > cj
		}
		return names[i] > names[j]
	})

	t := template.New("gotpl").Option("missingkey=zero")
	funcs := helmFuncs(t)
	t.Funcs(funcs)
	for _, n := range names {
		if _, err := t.New(n).Parse(srcs[n]); err != nil {
			return nil, fmt.Errorf("parse error in (%s): %v", n, err)
		}
	}
	out := map[string]string{}
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		vals := values{}
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = values{"Name": n, "BasePath": path.Join(chartName, "templates")}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, n, vals); err != nil {
			return nil, cleanExecError(n, err)
		}
		out[n] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

const failMark = "HELM_ERR_START"

var failRe = regexp.MustCompile(failMark + `((?s).*)HELM_ERR_END`)

// cleanExecError words a template error as helm does: "execution error at (FILE:LINE:COL): MESSAGE".
func cleanExecError(name string, err error) error {
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %v", name, err)
	}
	if m := failRe.FindStringSubmatch(tokens[2]); len(m) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], m[1])
	}
	return err
}

func helmFuncs(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	included := map[string]int{}
	var include func(string, interface{}) (string, error)
	include = func(name string, data interface{}) (string, error) {
		if included[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["include"] = include
	f["tpl"] = func(text string, data interface{}) (string, error) {
		c, err := t.Clone()
		if err != nil {
			return "", err
		}
		c.Option("missingkey=zero")
		c, err = c.New(t.Name()).Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var buf strings.Builder
		if err := c.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(failMark + msg + "HELM_ERR_END")
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(failMark + msg + "HELM_ERR_END")
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(failMark + msg + "HELM_ERR_END") }
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // as `helm template`: no cluster
	}
	f["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	return f
}

// helm's InstallOrder; kinds not in it go last, by name.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

var docSep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

type manifest struct {
	source, content, kind string
}

type head struct {
	Kind     string `json:"kind"`
	Metadata *struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

func sortedManifests(files map[string]string) (string, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var ms []manifest
	for _, n := range names {
		if strings.TrimSpace(files[n]) == "" {
			continue
		}
		for _, d := range docSep.Split(strings.TrimSpace(files[n]), -1) {
			if d == "" {
				continue
			}
			d = strings.TrimSpace(d)
			var h head
			if err := yaml.Unmarshal([]byte(d), &h); err != nil {
				return "", fmt.Errorf("YAML parse error on %s: %v", n, err)
			}
			if h.Metadata != nil && h.Metadata.Annotations["helm.sh/hook"] != "" {
				return "", fmt.Errorf("%s: hooks are not supported by chart-render; use helm", n)
			}
			ms = append(ms, manifest{n, d, h.Kind})
		}
	}
	rank := map[string]int{}
	for i, k := range installOrder {
		rank[k] = i
	}
	sort.SliceStable(ms, func(i, j int) bool {
		a, aok := rank[ms[i].kind]
		b, bok := rank[ms[j].kind]
		switch {
		case !aok && !bok:
			return ms[i].kind < ms[j].kind
		case !aok:
			return false
		case !bok:
			return true
		}
		return a < b
	})
	var b bytes.Buffer
	for _, m := range ms {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	return b.String(), nil
}
