"""Field names of Kubernetes objects checked against one version's OpenAPI
spec (the swagger.json of that version's source tree): what kubectl's
validation and the API server refuse as "unknown field", and what the npm
kubernetes-models schemas do not check (they allow any field name).
"""
import glob
import json
import os

# Where a spec of Kubernetes 1.20 may be on this machine: given, or in the k8s
# test layer's cache of Debian's kubernetes 1.20 source package.
SPEC_1_20_GLOBS = ["/var/cache/pwru-k8s/*/gopath/src/k8s.io/kubernetes/api/openapi-spec/swagger.json"]


def find_spec_1_20():
    given = os.environ.get("PWRU_K8S_OPENAPI_1_20", "")
    if given:
        return given
    for pattern in SPEC_1_20_GLOBS:
        for path in sorted(glob.glob(pattern)):
            return path
    return ""


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.defs = json.load(f)["definitions"]
        self.by_gvk = {}
        for name, d in self.defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind", []):
                api = gvk["version"] if not gvk["group"] else gvk["group"] + "/" + gvk["version"]
                self.by_gvk[(api, gvk["kind"])] = name

    def knows(self, obj):
        return (obj.get("apiVersion"), obj.get("kind")) in self.by_gvk

    def unknown_fields(self, obj):
        """Paths (spec.template.spec.containers[0].x) of fields the spec does not have."""
        out = []
        self._walk(obj, self.by_gvk[(obj["apiVersion"], obj["kind"])], "", out)
        return out

    def _walk(self, value, schema_or_name, where, out):
        schema = self.defs[schema_or_name] if isinstance(schema_or_name, str) else schema_or_name
        if "$ref" in schema:
            return self._walk(value, schema["$ref"].split("/")[-1], where, out)
        if isinstance(value, list) and "items" in schema:
            for i, v in enumerate(value):
                self._walk(v, schema["items"], f"{where}[{i}]", out)
        elif isinstance(value, dict):
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for k, v in value.items():
                path = f"{where}.{k}" if where else k
                if props is not None and k in props:
                    self._walk(v, props[k], path, out)
                elif isinstance(extra, dict):
                    self._walk(v, extra, path, out)
                elif props is not None:
                    out.append(path)
