// Validates Kubernetes manifests (multi-document YAML files) against the
// Kubernetes API's OpenAPI schemas (kubernetes-models, and cert-manager's CRD
// schemas from @kubernetes-models/cert-manager). Every document must be a
// known apiVersion/kind; duplicate keys are errors (js-yaml).
//   node tools/k8s-validate/validate.mjs FILE... | -   (- reads stdin)
// Prints one line per invalid object and exits 1; prints a count and exits 0.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

// apiVersion -> module with one class per kind.
const modules = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "rbac.authorization.k8s.io/v1": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "scheduling.k8s.io/v1": "kubernetes-models/scheduling.k8s.io/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
};

function explain(err) {
  // ajv errors: instancePath + message.
  if (err && Array.isArray(err.details))
    return err.details.map((d) => `${d.instancePath || "/"} ${d.message}${d.params && d.params.additionalProperty ? ` (${d.params.additionalProperty})` : ""}`).join("; ");
  return String(err && err.message ? err.message : err);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: validate.mjs FILE... (- for stdin)");
  process.exit(2);
}
let bad = 0, good = 0;
for (const file of files) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  let docs;
  try {
    docs = yaml.loadAll(text);
  } catch (e) {
    console.log(`${file}: not valid YAML: ${e.message.split("\n")[0]}`);
    bad++;
    continue;
  }
  for (const obj of docs) {
    if (obj === null || obj === undefined) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    const modName = modules[obj.apiVersion];
    if (!modName) {
      console.log(`${where}: unknown apiVersion ${obj.apiVersion} (add it to tools/k8s-validate/validate.mjs)`);
      bad++;
      continue;
    }
    const mod = await import(modName);
    const Model = mod[obj.kind];
    if (!Model) {
      console.log(`${where}: no kind ${obj.kind} in ${obj.apiVersion}`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      good++;
    } catch (e) {
      console.log(`${where}: ${explain(e)}`);
      bad++;
    }
  }
}
if (good === 0 && bad === 0) {
  console.log("no Kubernetes objects in " + files.join(" "));
  process.exit(1);
}
if (bad) process.exit(1);
console.log(`${good} objects valid`);
