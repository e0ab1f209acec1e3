"""Offline checks of the secured deployments, for scripts/validate_deploy.py.

  deploy/compose.secure.yaml
                     alone and merged over compose.yaml (Compose's merge: mappings
                     merged, entrypoint replaced, secrets and ports joined) against the
                     Compose Specification schema; deploy/make-secrets.sh is run into a
                     temporary directory and every secret file the override names must be
                     among what it makes; each Weir service reads its settings from a
                     mounted secret, and those settings with the service's WEIR_ variables
                     pass the settings checks and the security rules below.
  deploy/k8s-secure  the overlay's patches applied to deploy/k8s the way kustomize's
                     strategic merge does for these fields (containers, env, volumes and
                     volumeMounts by key), every object strict against the Kubernetes
                     schemas; entrypoint.sh run as each pod with the overlay's env; the
                     Secrets' keys are the ones deploy/make-secrets.sh makes and the
                     kustomization's instructions create; the same security rules.
  security rules     every listener's protocol is in the map and every client listener
                     speaks SSL or SASL_SSL; the CONTROLLER listener speaks SSL with
                     ssl.client.auth=required; the inter-broker listener is a client
                     listener whose mechanism has the broker's own user and password, which
                     is also a PLAIN user there, and a super user under the authorizer;
                     each ssl.*.location is a mounted secret file; each keystore holds a
                     key and a certificate that `openssl verify` accepts against the
                     truststore and whose names cover the node's advertised host names;
                     the audit log is on the data volume.
"""
import fnmatch
import os
import re
import subprocess
import tempfile

import kubernetes_validate
import yaml

SECURED = ("SSL", "SASL_SSL")


def merge(base, over, path=()):
    """Compose's merge of an override file into a base one, for the keys used here."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v, path + (k,)) if k in base else v
        return out
    if isinstance(base, list) and isinstance(over, list) and path and \
            path[-1] in ("secrets", "ports", "volumes"):
        return base + [v for v in over if v not in base]
    return over


def make_secrets(vd, openssl, tmp, namespace="default"):
    """Runs deploy/make-secrets.sh into tmp/secrets; the directory."""
    out = os.path.join(tmp, "secrets")
    env = dict(os.environ, PATH=f"{os.path.dirname(openssl)}:{os.environ.get('PATH', '')}")
    r = subprocess.run(["bash", os.path.join(vd.DEPLOY, "make-secrets.sh"), out, namespace],
                       capture_output=True, text=True, env=env)
    vd.need(r.returncode == 0, f"deploy/make-secrets.sh: {r.stderr.strip() or r.stdout}")
    return out


def cert_names(openssl, pem):
    """The DNS names and IP addresses a certificate is for."""
    r = subprocess.run([openssl, "x509", "-noout", "-ext", "subjectAltName"], input=pem,
                       capture_output=True, text=True)
    return re.findall(r"(?:DNS|IP Address):([^,\s]+)", r.stdout)


def check_keystore(vd, openssl, keystore, truststore, hosts, where):
    """keystore (PEM: key + chain) verifies against truststore and covers hosts."""
    text = vd.read(keystore)
    vd.need("PRIVATE KEY-----" in text, f"{where}: {os.path.basename(keystore)} has no key")
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    vd.need(certs, f"{where}: {os.path.basename(keystore)} has no certificate")
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as leaf:
        leaf.write(certs[0])
        leaf.flush()
        r = subprocess.run([openssl, "verify", "-CAfile", truststore, leaf.name],
                           capture_output=True, text=True)
    vd.need(r.returncode == 0, f"{where}: openssl verify: {r.stdout.strip()} {r.stderr.strip()}")
    names = cert_names(openssl, certs[0])
    for h in hosts:
        vd.need(any(fnmatch.fnmatch(h, n) if n.startswith("*.") else h == n for n in names),
                f"{where}: the certificate is for {names}, not {h}")


def jaas_options(value):
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def setting(settings, listener, name):
    return settings.get(f"listener.name.{listener.lower()}.{name}", settings.get(name))


def check_secured(vd, openssl, settings, where, files, hosts):
    """The security rules for one node. `files` maps a path inside the container to the
    local file that will be there; `hosts` maps a listener name to the host names its
    advertised address must be covered by."""
    parsed = vd.check_settings(settings, where)
    proto = {}
    for item in settings.get("listener.security.protocol.map", "").split(","):
        if ":" in item:
            k, v = item.split(":", 1)
            proto[k.strip()] = v.strip()
    for name, _, _ in parsed["listeners"]:
        vd.need(name in proto, f"{where}: listener {name} is not in "
                "listener.security.protocol.map")
    for name, _, _ in parsed["clients"]:
        vd.need(proto[name] in SECURED, f"{where}: client listener {name} speaks "
                f"{proto[name]}, not SSL or SASL_SSL")
    for name, _, _ in parsed["controller"]:
        vd.need(proto[name] == "SSL", f"{where}: {name} speaks {proto[name]}, not SSL")
        vd.need(setting(settings, name, "ssl.client.auth") == "required",
                f"{where}: {name} does not require client certificates (ssl.client.auth)")
    inter = settings.get("inter.broker.listener.name", parsed["clients"][0][0])
    vd.need(inter in [n for n, _, _ in parsed["clients"]], f"{where}: inter-broker listener "
            f"{inter} is not a client listener")
    if proto[inter] == "SASL_SSL":
        mech = settings.get("sasl.mechanism.inter.broker.protocol", "")
        vd.need(mech, f"{where}: set sasl.mechanism.inter.broker.protocol")
        jaas = setting(settings, inter, f"{mech.lower()}.sasl.jaas.config") or \
            setting(settings, inter, "sasl.jaas.config") or ""
        opts = jaas_options(jaas)
        vd.need(opts.get("username") and opts.get("password"), f"{where}: the {mech} JAAS "
                f"settings of {inter} lack the broker's own username and password")
        if mech == "PLAIN":
            vd.need(opts.get(f"user_{opts['username']}") == opts["password"],
                    f"{where}: the broker's user {opts['username']} is not a PLAIN user "
                    "with its password")
        if settings.get("authorizer.class.name"):
            vd.need(f"User:{opts['username']}" in settings.get("super.users", "").split(";"),
                    f"{where}: under the authorizer the brokers' user must be a super user "
                    "(follower fetches need CLUSTER_ACTION)")
    for name, _, _ in parsed["listeners"]:
        if proto[name] not in SECURED:
            continue
        keystore = setting(settings, name, "ssl.keystore.location")
        truststore = setting(settings, name, "ssl.truststore.location")
        vd.need(keystore, f"{where}: {name} has no ssl.keystore.location")
        for path in (keystore, truststore):
            if path:
                vd.need(path in files, f"{where}: {path} is not a mounted secret")
                vd.need(os.path.isfile(files[path]), f"{where}: {path} would be missing")
        vd.need(truststore, f"{where}: {name} has no ssl.truststore.location")
        check_keystore(vd, openssl, files[keystore], files[truststore], hosts.get(name, []),
                       f"{where} {name}")
    audit = settings.get("audit.log.file")
    if audit:
        vd.need(audit.startswith(vd.DATA_DIR + "/"), f"{where}: audit.log.file {audit} is "
                f"not on the data volume {vd.DATA_DIR}")
    return parsed


def check_compose_secure(vd, openssl):
    path = os.path.join(vd.DEPLOY, "compose.secure.yaml")
    over = vd.load_yaml(path)
    base = vd.compose()
    merged = merge(base, over)
    schema = __import__("json").loads(vd.read(os.path.join(vd.DEPLOY, "schemas",
                                                            "compose-spec.json")))
    validator = __import__("jsonschema").Draft7Validator(schema)
    for what, doc in (("compose.secure.yaml", over), ("merged", merged)):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        vd.need(not errors, f"{what}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in errors[:5]))
    with tempfile.TemporaryDirectory() as tmp:
        made = make_secrets(vd, openssl, tmp)
        secrets = {}
        for name, spec in (over.get("secrets") or {}).items():
            src = spec.get("file", "")
            vd.need(src.startswith("./secrets/"), f"secret {name}: file {src} is not under "
                    "./secrets (where deploy/make-secrets.sh writes)")
            local = os.path.join(made, src[len("./secrets/"):])
            vd.need(os.path.isfile(local), f"secret {name}: deploy/make-secrets.sh makes no "
                    f"{src}")
            secrets[name] = local
        services = vd.weir_services(merged)
        vd.need(set(services) == set(over["services"]), "compose.secure.yaml must secure "
                f"every Weir service ({sorted(services)})")
        for name, svc in services.items():
            where = f"compose.secure.yaml services.{name}"
            mounted = {}
            for s in svc.get("secrets", []):
                s_name = s if isinstance(s, str) else s["source"]
                target = s_name if isinstance(s, str) else s.get("target", s_name)
                vd.need(s_name in secrets, f"{where}: secret {s_name} is not declared")
                mounted[f"/run/secrets/{target}"] = secrets[s_name]
            entry = svc.get("entrypoint") or []
            vd.need(len(entry) == 3 and entry[1] == "--config" and entry[2] in mounted,
                    f"{where}: entrypoint {entry} does not read a mounted secret with --config")
            settings = vd.parse_properties(mounted[entry[2]])
            for k, v in vd.env_of(svc).items():
                settings[k[len("WEIR_"):].lower().replace("_", ".")] = v
            adv = vd.parse_listeners(settings.get("advertised.listeners", ""), where)
            hosts = {n: [h] for n, h, _ in adv}
            parsed = check_secured(vd, openssl, settings, where, mounted, hosts)
            published = {}
            for p in svc.get("ports", []):
                m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)", str(p))
                vd.need(m, f"{where}: ports entry {p!r} unreadable")
                published[int(m.group(3))] = int(m.group(2))
            clients = {n: p for n, _, p in parsed["clients"]}
            for n, h, p in adv:
                if n not in clients:
                    continue
                if h in ("127.0.0.1", "localhost"):
                    vd.need(published.get(clients[n]) == p, f"{where}: {n} is advertised as "
                            f"{h}:{p} but its port {clients[n]} is not published there")
                else:
                    vd.need(h in (name, svc.get("hostname")), f"{where}: {n} advertises {h}, "
                            f"not the service name {name}")
    return f"{len(services)} secured nodes, {len(secrets)} secrets"


def strategic_merge(base, patch, path=()):
    """kustomize's strategic merge for the fields the overlay patches: lists of objects
    merged by their key (containers, env and volumes by name, volumeMounts by
    mountPath); other lists replaced; mappings merged."""
    keys = {"containers": "name", "env": "name", "volumes": "name", "volumeMounts": "mountPath"}
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = strategic_merge(base[k], v, path + (k,)) if k in base else v
        return out
    if isinstance(base, list) and isinstance(patch, list) and path and path[-1] in keys:
        key = keys[path[-1]]
        out = list(base)
        for item in patch:
            same = [i for i, b in enumerate(out) if b.get(key) == item.get(key)]
            if same:
                out[same[0]] = strategic_merge(out[same[0]], item, path)
            else:
                out.append(item)
        return out
    return patch


def canonical(obj):
    """obj with its keyed lists in key order (kustomize puts new items first)."""
    if isinstance(obj, dict):
        return {k: canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        items = [canonical(v) for v in obj]
        if items and all(isinstance(i, dict) and ("name" in i or "mountPath" in i)
                         for i in items):
            return sorted(items, key=lambda i: str(i.get("mountPath", i.get("name"))))
        return items
    return obj


def check_k8s_secure(vd, openssl, kubectl):
    sdir = os.path.join(vd.DEPLOY, "k8s-secure")
    k = vd.load_yaml(os.path.join(sdir, "kustomization.yaml"))
    vd.need(k.get("resources") == ["../k8s"], "deploy/k8s-secure must build on ../k8s alone")
    objs = vd.k8s_objects()
    for p in k.get("patches") or []:
        patch = vd.load_yaml(os.path.join(sdir, p["path"]))
        key = (patch["kind"], patch["metadata"]["name"])
        vd.need(key in objs, f"{p['path']} patches {key}, which deploy/k8s does not have")
        objs[key] = strategic_merge(objs[key], patch)
    rendered_note = "kubectl not installed: merged here"
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", sdir], capture_output=True, text=True)
        vd.need(r.returncode == 0, f"kubectl kustomize: {r.stderr.strip()}")
        rendered = {(d["kind"], d["metadata"]["name"]): d
                    for d in yaml.safe_load_all(r.stdout) if d}
        differ = sorted(k for k in set(rendered) | set(objs)
                        if canonical(rendered.get(k)) != canonical(objs.get(k)))
        vd.need(not differ, "kubectl kustomize renders something else than the merge "
                f"checked here: {differ}")
        rendered_note = "kubectl kustomize renders the same"
    for (kind, name), obj in objs.items():
        for version in vd.K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise vd.Failed(f"{kind}/{name} (Kubernetes {version}): "
                                f"{'/'.join(map(str, e.path))}: {e.message}") from None
    sts = vd.one(objs, "StatefulSet")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "weir"]
    cm = objs[("ConfigMap", [v for v in pod["volumes"] if "configMap" in v][0]
               ["configMap"]["name"])]
    # The Secrets the kustomization's instructions create, from make-secrets.sh's files.
    comment = "\n".join(line.lstrip("#") for line in
                        vd.read(os.path.join(sdir, "kustomization.yaml")).splitlines())
    created = {}
    for m in re.finditer(r"create secret generic ([\w-]+)((?:\s*\\?\s*--from-file=\S+)+)",
                         comment):
        created[m.group(1)] = dict(re.findall(r"--from-file=([\w.-]+)=deploy/secrets/(\S+)",
                                              m.group(2)))
    vd.need(created, "kustomization.yaml does not say how to create its Secrets")
    with tempfile.TemporaryDirectory() as tmp:
        made = make_secrets(vd, openssl, tmp, "weir-check")
        for secret, keys in created.items():
            for key, f in keys.items():
                vd.need(os.path.isfile(os.path.join(made, f)), f"Secret {secret} key {key}: "
                        f"deploy/make-secrets.sh makes no {f}")
        files = {}
        for v in pod["volumes"]:
            if "secret" not in v:
                continue
            sname = v["secret"]["secretName"]
            vd.need(sname in created, f"volume {v['name']}: Secret {sname} is not created by "
                    "the instructions")
            (mount,) = [m["mountPath"] for m in c["volumeMounts"] if m["name"] == v["name"]]
            for key, f in created[sname].items():
                files[f"{mount}/{key}"] = os.path.join(made, f)
        env = {}
        for e in c["env"]:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                vd.need(ref["name"] in created and ref["key"] in created[ref["name"]],
                        f"env {e['name']}: Secret {ref['name']} key {ref['key']} is not created")
                env[e["name"]] = vd.read(os.path.join(made, created[ref["name"]][ref["key"]]))
        base = vd.properties_from_text(cm["data"]["weir.properties"], "weir.properties")
        for k2, v2 in env.items():
            if k2.startswith("WEIR_"):
                base[k2[len("WEIR_"):].lower().replace("_", ".")] = v2
        ns, svc = "weir-check", spec["serviceName"]
        for ordinal in range(spec["replicas"]):
            name = f"{sts['metadata']['name']}-{ordinal}"
            r = vd.run_entrypoint(cm["data"]["entrypoint.sh"],
                                  {**{k2: v2 for k2, v2 in env.items() if not k2.startswith("WEIR_")},
                                   "POD_NAME": name, "POD_NAMESPACE": ns})
            vd.need(r.returncode == 0, f"entrypoint.sh as {name}: {r.stderr}")
            args = r.stdout.splitlines()
            settings = dict(base)
            for i, a in enumerate(args):
                if a == "--set":
                    key, _, val = args[i + 1].partition("=")
                    settings[key] = val
            host = f"{name}.{svc}.{ns}.svc.cluster.local"
            adv = vd.parse_listeners(settings.get("advertised.listeners", ""), name)
            vd.need(all(h == host for _, h, _ in adv), f"pod {name}: advertises {adv}")
            check_secured(vd, openssl, settings, f"pod {name}", files,
                          {n: [host] for n, _, _ in adv})
    return (f"{len(objs)} objects, {len(created)} Secrets, {spec['replicas']} pods; "
            f"{rendered_note}")
