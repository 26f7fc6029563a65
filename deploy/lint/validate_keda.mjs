// Validates KEDA resources against KEDA's CRD schemas, as @kubernetes-models/keda ships
// them; kubernetes-validate knows only the built-in kinds. Also checks what those schemas
// leave open: an aws-sqs-queue trigger's metadata keys (a map of strings to KEDA) and that
// every authenticationRef names a TriggerAuthentication in the same manifests.
//
// Usage: node validate_keda.mjs <node_modules dir> <file.json>...
// (deploy/lint/check.py writes the files: a JSON array of rendered KEDA resources each.)

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const kedaDir = join(modules, "@kubernetes-models", "keda", "keda.sh", "v1alpha1");
const kinds = [
  "ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication",
];
const models = {};
for (const kind of kinds) {
  const module = await import(pathToFileURL(join(kedaDir, `${kind}.js`)).href);
  models[kind] = module[kind];
}

// The scaler's parameters as KEDA documents them (identityOwner is deprecated: use a
// TriggerAuthentication with podIdentity).
const sqsMetadata = new Set([
  "queueURL", "queueURLFromEnv", "queueLength", "activationQueueLength", "awsRegion",
  "awsEndpoint", "scaleOnInFlight", "scaleOnDelayed",
]);

let failures = 0;
const fail = (file, doc, message) => {
  failures += 1;
  console.log(`error: ${file}: ${doc.kind} ${doc.metadata?.name}: ${message}`);
};

let checked = 0;
for (const file of files) {
  const docs = JSON.parse(readFileSync(file, "utf8"));
  const auths = new Set(
    docs.filter((d) => d.kind === "TriggerAuthentication").map((d) => d.metadata.name),
  );
  for (const doc of docs) {
    checked += 1;
    const Model = models[doc.kind];
    if (doc.apiVersion !== "keda.sh/v1alpha1" || !Model) {
      fail(file, doc, `no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (err) {
      fail(file, doc, err.message);
    }
    for (const trigger of doc.spec?.triggers ?? []) {
      const ref = trigger.authenticationRef?.name;
      if (ref && !auths.has(ref)) {
        fail(file, doc, `authenticationRef ${ref} is not a TriggerAuthentication here`);
      }
      if (trigger.type !== "aws-sqs-queue") continue;
      for (const key of Object.keys(trigger.metadata ?? {})) {
        if (!sqsMetadata.has(key)) fail(file, doc, `aws-sqs-queue has no parameter ${key}`);
      }
      if (!trigger.metadata?.awsRegion) fail(file, doc, "aws-sqs-queue needs awsRegion");
    }
  }
}

if (failures > 0) process.exit(1);
console.log(`keda: ${checked} resources valid`);
