"""Checks that deploy/ agrees with itself and with the code it deploys.

Run by deploy/lint.sh with the lint virtualenv's Python (PyYAML and python-hcl2). Given the
rendered base and overlay (`kubectl kustomize` output), it:

- parses every Terraform file, and checks that each `var.`, `local.`, `data.` and resource
  reference names something declared (the part of `terraform validate` that needs no
  provider);
- checks every environment variable a manifest sets against the ones the service's binary
  reads (`env = "..."` in services/<service>/src), listen addresses against container ports,
  probe paths against the routes the service serves, service URLs against Services;
- checks that queue names agree between the code (trace_common::api::QUEUE_*), Terraform and
  the ScaledObjects; that the services that call AWS (the holders of TRACE_OBJECTS_BUCKET,
  the dispatcher on SQS) are exactly those with an IRSA role, AWS_REGION and AWS egress;
  that a holder of TRACE_OIDC_ISSUER may reach public addresses on 443 (the JWKS) and that
  its tenant claim, groups claim and admin group are the Cognito user pool's (a custom
  attribute the app client reads, Cognito's groups claim, a group of the pool);
  that images match the Dockerfile's targets and ports; and that the overlay's parameters
  are the ones Terraform writes and leave no placeholder behind;
- splits the rendered manifests into built-in kinds (for kubernetes-validate) and KEDA kinds
  (for validate_keda.mjs), refusing any other kind.

Prints one line per finding and exits 1 if there was any.
"""

import json
import re
import sys
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TERRAFORM = DEPLOY / "terraform"

# Placeholders the base carries for what the overlay fills in.
PLACEHOLDERS = ("set-by-overlay", "192.0.2.0/32")
# Variables the AWS SDK reads (aws_config's usual chain), set only where the SDK is used:
# by the holders of TRACE_OBJECTS_BUCKET (and the dispatcher, for SQS).
SDK_ENV = {"AWS_REGION"}
# The data migration job runs sqlx-cli, which reads DATABASE_URL.
MIGRATE_JOB = "trace-migrate-data"

findings = []


def finding(message):
    findings.append(message)


def rust_sources(service):
    return sorted((ROOT / "services" / service / "src").rglob("*.rs"))


def env_names_read_by(service):
    """The environment variables a service's binary reads (clap's `env = "..."`)."""
    names = set()
    for path in rust_sources(service):
        names.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', path.read_text()))
    return names


def serves_route(service, route):
    needle = f'"{route}"'
    return any(needle in path.read_text() for path in rust_sources(service))


def internal_queue_names():
    api = (ROOT / "services/common/src/api.rs").read_text()
    return set(re.findall(r'pub const QUEUE_[A-Z_]+: &str = "([a-z-]+)";', api))


# ---- Terraform ----------------------------------------------------------------------------


def load_terraform():
    parsed = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        try:
            with path.open() as f:
                parsed[path.name] = hcl2.load(f)
        except Exception as err:  # any parse failure is a finding, with the parser's words
            finding(f"{path.relative_to(ROOT)}: does not parse: {err}")
    return parsed


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def check_terraform_references(parsed):
    variables, locals_, resources, data = set(), {}, set(), set()
    for doc in parsed.values():
        for block in doc.get("variable", []):
            variables.update(block)
        for block in doc.get("locals", []):
            locals_.update({k: v for k, v in block.items() if not k.startswith("__")})
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                resources.update(f"{rtype}.{name}" for name in named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                data.update(f"{dtype}.{name}" for name in named)

    used = set()
    for file, doc in parsed.items():
        for text in strings_in(doc):
            used.update(re.findall(r"\b(?:var|local)\.[A-Za-z_][\w-]*", text))
            if "${" not in text:
                continue
            for name in re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text):
                if name not in variables:
                    finding(f"terraform/{file}: `var.{name}` is not declared")
            for name in re.findall(r"\blocal\.([A-Za-z_][\w-]*)", text):
                if name not in locals_:
                    finding(f"terraform/{file}: `local.{name}` is not declared")
            for dtype, name in re.findall(r"\bdata\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)", text):
                if f"{dtype}.{name}" not in data:
                    finding(f"terraform/{file}: `data.{dtype}.{name}` is not declared")
            without_data = re.sub(r"\bdata\.[a-z0-9_]+\.[A-Za-z_][\w-]*", "", text)
            for rtype, name in re.findall(r"\b(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)", without_data):
                if f"{rtype}.{name}" not in resources:
                    finding(f"terraform/{file}: `{rtype}.{name}` is not declared")
    for name in sorted(variables):
        if f"var.{name}" not in used:
            finding(f"terraform: variable `{name}` is declared but never used")
    for name in sorted(locals_):
        if f"local.{name}" not in used:
            finding(f"terraform: local `{name}` is declared but never used")
    return locals_


def terraform_local(locals_, name):
    value = locals_.get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def terraform_set(locals_, name):
    """A local written as `toset([...])`, as python-hcl2 leaves it: one string."""
    text = terraform_local(locals_, name) or ""
    return set(re.findall(r"'([^']+)'", text)) | set(re.findall(r'"([^"]+)"', text))


# ---- Kubernetes -----------------------------------------------------------------------------


def load_rendered(path):
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def by_kind(docs, kind):
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs):
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind(docs, kind).items():
            yield name, doc["spec"]["template"]["spec"]


def calls_aws(env):
    return "TRACE_OBJECTS_BUCKET" in env or env.get("TRACE_QUEUE_BACKEND") == "sqs"


def aws_callers(docs):
    config_maps = by_kind(docs, "ConfigMap")
    return {
        name
        for name, spec in pod_specs(docs)
        if calls_aws(container_env(spec["containers"][0], config_maps))
    }


def selected_names(policy):
    """The app.kubernetes.io/name values a NetworkPolicy's podSelector picks."""
    selector = policy["spec"]["podSelector"]
    names = set()
    if "app.kubernetes.io/name" in selector.get("matchLabels", {}):
        names.add(selector["matchLabels"]["app.kubernetes.io/name"])
    for expression in selector.get("matchExpressions", []):
        if expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In":
            names.update(expression["values"])
    return names


def selects(selector, name):
    """Whether a label selector picks the pods of `name` (app.kubernetes.io/name)."""
    labels = {"app.kubernetes.io/name": name}
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] != "In" or value not in expression["values"]:
            return False
    return True


def policy_allows(policies, direction, pod, peer, port):
    """Whether some policy selecting `pod` lets it talk to (egress) or hear from (ingress)
    the pods of `peer` in this namespace on `port`."""
    peers_key = "to" if direction == "egress" else "from"
    for policy in policies:
        if not selects(policy["spec"]["podSelector"], pod):
            continue
        for rule in policy["spec"].get(direction) or []:
            ports = [p.get("port") for p in rule.get("ports", [])]
            if ports and port not in ports and None not in ports:
                continue
            for other in rule.get(peers_key, []):
                if "namespaceSelector" in other or "podSelector" not in other:
                    continue
                if selects(other["podSelector"], peer):
                    return True
    return False


def container_env(container, config_maps):
    """Every environment variable a container gets: from ConfigMaps and its own `env`."""
    env = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is None:
            finding(f"container {container['name']}: envFrom other than a ConfigMap")
            continue
        config_map = config_maps.get(ref["name"])
        if config_map is None:
            finding(f"container {container['name']}: no ConfigMap `{ref['name']}`")
            continue
        env.update(config_map.get("data", {}))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def check_workload(name, spec, docs, config_maps):
    service = name.removeprefix("trace-")
    containers = spec["containers"]
    if len(containers) != 1:
        finding(f"{name}: expected one container, found {len(containers)}")
    container = containers[0]
    env = container_env(container, config_maps)

    if name == MIGRATE_JOB:
        allowed = {"DATABASE_URL"}
    else:
        allowed = env_names_read_by(service) | (SDK_ENV if calls_aws(env) else set())
    for var in sorted(set(env) - allowed):
        finding(f"{name}: sets `{var}`, which trace-{service} does not read")

    for item in container.get("env", []):
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref and (ref["name"] != f"{name}-secrets" or ref["key"] != item["name"]):
            finding(f"{name}: secret of `{item['name']}` should be {name}-secrets/{item['name']}")

    if spec.get("serviceAccountName") != name:
        finding(f"{name}: should run as the service account `{name}`")
    if name == MIGRATE_JOB:
        return

    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    listens = [var for var in env if var.endswith("LISTEN")]
    if len(listens) != 1:
        finding(f"{name}: expected one *_LISTEN variable, found {listens}")
    else:
        host, _, port = str(env[listens[0]]).rpartition(":")
        if host != "0.0.0.0" or int(port) not in ports.values():
            finding(f"{name}: {listens[0]}={env[listens[0]]} is not 0.0.0.0:<a container port>")

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = container.get(probe, {}).get("httpGet")
        if http is None:
            finding(f"{name}: no HTTP {probe}")
            continue
        if http["port"] not in ports:
            finding(f"{name}: {probe} names port `{http['port']}`, which is not declared")
        if not serves_route(service, http["path"]):
            finding(f"{name}: {probe} path {http['path']} is not a route of trace-{service}")

    services = by_kind(docs, "Service")
    policies = list(by_kind(docs, "NetworkPolicy").values())
    for var, value in env.items():
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", str(value))
        if not match:
            continue
        target = services.get(match[1])
        if target is None:
            finding(f"{name}: {var} names `{match[1]}`, which is not a Service")
            continue
        if int(match[2]) not in [p["port"] for p in target["spec"]["ports"]]:
            finding(f"{name}: {var} uses port {match[2]}, not a port of Service {match[1]}")
        # Service port and container port are the same number here (checked above and in
        # the Deployment), so the policies' ports can be compared with it.
        peer, port = target["spec"]["selector"]["app.kubernetes.io/name"], int(match[2])
        if not policy_allows(policies, "egress", name, peer, port):
            finding(f"{name}: no NetworkPolicy lets it reach {peer}:{port} ({var})")
        if not policy_allows(policies, "ingress", peer, name, port):
            finding(f"{peer}: no NetworkPolicy lets {name} in on {port} ({var})")


def check_base(docs, locals_):
    config_maps = by_kind(docs, "ConfigMap")
    deployments = by_kind(docs, "Deployment")
    accounts = by_kind(docs, "ServiceAccount")
    for name, spec in pod_specs(docs):
        check_workload(name, spec, docs, config_maps)

    callers = aws_callers(docs)
    for name in sorted(callers):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        if "AWS_REGION" not in container_env(container, config_maps):
            finding(f"{name}: calls AWS but sets no AWS_REGION")
    reach = selected_names(by_kind(docs, "NetworkPolicy")["allow-aws-apis"])
    if reach != callers:
        finding(f"allow-aws-apis selects {sorted(reach)}, the AWS callers are {sorted(callers)}")

    irsa = terraform_set(locals_, "irsa_roles")
    if irsa != callers:
        finding(f"Terraform gives roles to {sorted(irsa)}, the AWS callers are {sorted(callers)}")
    for name, account in accounts.items():
        annotated = "eks.amazonaws.com/role-arn" in account["metadata"].get("annotations", {})
        if annotated != (name in irsa):
            finding(f"ServiceAccount {name}: IRSA annotation and Terraform's roles disagree")

    for kind in ("Secret",):
        for doc_name in by_kind(docs, kind):
            finding(f"{kind} {doc_name} is in the manifests; secrets are created out of band")

    queue_prefix = "trace-"
    internal = internal_queue_names()
    tf_queues = set(terraform_local(locals_, "queues") or {})
    if tf_queues != internal:
        finding(f"Terraform queues {sorted(tf_queues)} are not the code's {sorted(internal)}")
    if config_maps["trace-dispatcher"]["data"].get("TRACE_SQS_QUEUE_PREFIX") != queue_prefix:
        finding("the dispatcher's TRACE_SQS_QUEUE_PREFIX is not Terraform's default `trace-`")
    concurrency = {
        "trace-udf-worker": "TRACE_UDF_WORKER_CONCURRENCY",
        "trace-platform-worker": "TRACE_PLATFORM_WORKER_CONCURRENCY",
    }
    for name, scaled in by_kind(docs, "ScaledObject").items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            finding(f"ScaledObject {name}: no Deployment `{target}`")
        if "replicas" in deployments.get(target, {}).get("spec", {}):
            finding(f"Deployment {target} sets replicas, which its ScaledObject owns")
        for trigger in scaled["spec"]["triggers"]:
            queue = trigger["metadata"]["queueURL"].removeprefix(queue_prefix)
            if queue not in internal:
                finding(f"ScaledObject {name}: queue `{queue}` is not a Trace queue")
            if target in concurrency:
                per_pod = config_maps[target]["data"][concurrency[target]]
                if trigger["metadata"]["queueLength"] != per_pod:
                    finding(f"ScaledObject {name}: queueLength is not {concurrency[target]}")


def terraform_resources(parsed, rtype):
    """Every resource of type `rtype`, by name, as python-hcl2 leaves them."""
    found = {}
    for doc in parsed.values():
        for block in doc.get("resource", []):
            found.update(block.get(rtype, {}))
    return found


def hcl_value(block, key, default=None):
    """An attribute of a parsed block: python-hcl2 wraps each in a list."""
    value = block.get(key, [default])
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def oidc_defaults(service):
    """The defaults of the OIDC flags (`env = "TRACE_OIDC_..."`, `default_value = "..."`)."""
    defaults = {}
    for path in rust_sources(service):
        defaults.update(
            re.findall(
                r'env\s*=\s*"(TRACE_OIDC_[A-Z_]+)"\s*,\s*default_value\s*=\s*"([^"]*)"',
                path.read_text(),
            )
        )
    return defaults


def has_public_https_egress(policies, name):
    """Whether a policy selecting `name` lets it reach 0.0.0.0/0 (less exceptions) on 443."""
    for policy in policies:
        if not selects(policy["spec"]["podSelector"], name):
            continue
        for rule in policy["spec"].get("egress") or []:
            ports = [p.get("port") for p in rule.get("ports", [])]
            if ports and 443 not in ports and None not in ports:
                continue
            peers = rule.get("to")
            if not peers or any(p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for p in peers):
                return True
    return False


def check_oidc(docs, parsed):
    """The holders of TRACE_OIDC_ISSUER against the Cognito user pool and their egress."""
    config_maps = by_kind(docs, "ConfigMap")
    policies = list(by_kind(docs, "NetworkPolicy").values())
    pools = terraform_resources(parsed, "aws_cognito_user_pool")
    clients = terraform_resources(parsed, "aws_cognito_user_pool_client")
    groups = {
        hcl_value(group, "name")
        for group in terraform_resources(parsed, "aws_cognito_user_group").values()
    }
    custom = {
        f"custom:{hcl_value(attribute, 'name')}"
        for pool in pools.values()
        for attribute in pool.get("schema", [])
        if hcl_value(attribute, "attribute_data_type") == "String"
    }
    for name, spec in pod_specs(docs):
        env = container_env(spec["containers"][0], config_maps)
        if "TRACE_OIDC_ISSUER" not in env:
            continue
        service = name.removeprefix("trace-")
        settings = {**oidc_defaults(service), **env}
        if "TRACE_OIDC_AUDIENCE" not in env:
            finding(f"{name}: sets TRACE_OIDC_ISSUER but no TRACE_OIDC_AUDIENCE")
        if not has_public_https_egress(policies, name):
            finding(f"{name}: verifies OIDC tokens but no NetworkPolicy lets it fetch the JWKS")
        if not pools:
            finding(f"{name}: verifies OIDC tokens, Terraform has no Cognito user pool")
            continue
        tenant = settings.get("TRACE_OIDC_TENANT_CLAIM")
        if tenant not in custom:
            finding(f"{name}: TRACE_OIDC_TENANT_CLAIM={tenant} is not a custom attribute of "
                    f"the user pool ({sorted(custom)})")
        for client_name, client in clients.items():
            if tenant not in (hcl_value(client, "read_attributes") or []):
                finding(f"app client {client_name}: read_attributes lack {tenant}, so its ID "
                        "tokens name no tenant")
        if settings.get("TRACE_OIDC_GROUPS_CLAIM") != "cognito:groups":
            finding(f"{name}: TRACE_OIDC_GROUPS_CLAIM is not Cognito's `cognito:groups`")
        admin = settings.get("TRACE_OIDC_ADMIN_GROUP")
        if admin not in groups:
            finding(f"{name}: TRACE_OIDC_ADMIN_GROUP={admin} is not a group of the user pool "
                    f"({sorted(groups)})")


def check_dockerfile(docs, locals_):
    text = (DEPLOY / "Dockerfile").read_text()
    stages = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line)
        if match:
            current = match[1]
            stages[current] = set()
        match = re.match(r"EXPOSE\s+(\d+)", line)
        if match and current:
            stages[current].add(int(match[1]))

    images = set()
    for name, spec in pod_specs(docs):
        container = spec["containers"][0]
        image = container["image"].split(":")[0]
        images.add(image)
        if image not in stages:
            finding(f"{name}: image `{image}` is not a target of deploy/Dockerfile")
            continue
        ports = {p["containerPort"] for p in container.get("ports", [])}
        if stages[image] != ports:
            finding(f"{name}: Dockerfile exposes {sorted(stages[image])}, pod {sorted(ports)}")
    ecr = terraform_set(locals_, "images")
    if ecr != images:
        finding(f"ECR repositories {sorted(ecr)} are not the images {sorted(images)}")


def check_overlay(docs, parsed_locals):
    rendered = yaml.safe_dump_all(docs)
    for placeholder in PLACEHOLDERS:
        if placeholder in rendered:
            finding(f"overlays/aws leaves the placeholder `{placeholder}` in its output")

    params_file = DEPLOY / "k8s/overlays/aws/aws-params.yaml"
    params = yaml.safe_load(params_file.read_text())["data"]
    written = set(terraform_local(parsed_locals, "kustomize_params") or {})
    if set(params) != written:
        finding(
            f"aws-params.yaml keys differ from Terraform's kustomize_params: "
            f"{sorted(set(params) ^ written)}"
        )


def split_for_validators(docs, out, stem):
    builtin, keda = [], []
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if group == "keda.sh":
            keda.append(doc)
        elif "." in group and not group.endswith(".k8s.io"):
            finding(f"{doc['kind']} {doc['metadata']['name']}: no schema for `{group}`")
        else:
            builtin.append(doc)
    with (out / f"{stem}-builtin.yaml").open("w") as f:
        yaml.safe_dump_all(builtin, f)
    (out / f"{stem}-keda.json").write_text(json.dumps(keda))


def main():
    out = Path(sys.argv[1])
    parsed = load_terraform()
    locals_ = check_terraform_references(parsed)

    base = load_rendered(out / "base.yaml")
    overlay = load_rendered(out / "aws.yaml")
    check_base(base, locals_)
    check_oidc(base, parsed)
    check_dockerfile(base, locals_)
    check_overlay(overlay, locals_)
    split_for_validators(base, out, "base")
    split_for_validators(overlay, out, "aws")

    for message in findings:
        print(f"error: {message}")
    if findings:
        sys.exit(1)
    print(f"consistency: {len(parsed)} Terraform files, {len(base)} manifests, no findings")


if __name__ == "__main__":
    main()
