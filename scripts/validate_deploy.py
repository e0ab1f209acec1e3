#!/usr/bin/env python3
"""Offline checks of the deployment files under deploy/ and grafana/provisioning/.

Run by scripts/validate-deploy inside its venv (PyYAML, jsonschema, kubernetes-validate),
with the paths of the tools it installed. Every check prints one PASS or FAIL line; the
exit status is 1 if any check failed.

What is checked, file by file:
  Weir settings      every setting named in a properties file, a compose WEIR_* variable
                     or an entrypoint --set is a setting of src/config/defs.rs, with a value
                     of its type; listeners, voters and metrics.listen parse.
  deploy/Dockerfile  multi-stage (a builder running cargo build --release, a runtime
                     stage copying from it), non-root USER, HEALTHCHECK on
                     http://127.0.0.1:9644/health, EXPOSE 9092 9093 9644, VOLUME
                     /var/lib/weir, COPY sources exist and survive
                     deploy/Dockerfile.dockerignore, ENTRYPOINT reads the copied config.
  deploy/compose.yaml
                     the Compose Specification schema (deploy/schemas/compose-spec.json);
                     per Weir service: unique node ids, the voter list names each service
                     at its CONTROLLER port, the advertised address is the service name
                     at a client listener port published on the same host port, metrics
                     on 0.0.0.0, data volume at log.dirs; named volumes declared, bind
                     mounts exist; Prometheus and Grafana mounts match their configs.
  deploy/prometheus  `promtool check config` (which checks the rule files too) and the
                     weir job's targets are exactly the compose Weir services;
                     `promtool check rules` and `promtool test rules` (alerts_test.yml):
                     every alert has a severity and summary, and its unit tests show it
                     both firing and not firing.
  grafana/provisioning
                     datasources and dashboard providers: apiVersion 1, required keys,
                     the data source URL is the compose Prometheus, the provider path is
                     where compose mounts grafana/dashboards, the dashboards parse.
  deploy/k8s         every manifest against the Kubernetes OpenAPI schemas (strict: no
                     unknown fields) of two Kubernetes versions; kustomization lists
                     exactly the manifests (and `kubectl kustomize` renders it when
                     kubectl is installed); the StatefulSet, Services, PDB and ConfigMap
                     agree (names, selectors, ports, probes /health and /ready, replicas,
                     non-root, resources); entrypoint.sh is run with a stand-in `weir`
                     and the node.id, voters and advertised listener it passes are
                     checked; shellcheck on it.
  deploy/systemd     required directives (User, Type=simple, Restart, KillSignal,
                     TimeoutStopSec, LimitNOFILE, hardening), `systemd-analyze verify`
                     (with ExecStart pointed at a stand-in, the one change), and
                     `systemd-analyze security --offline` under an exposure threshold.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
GRAFANA = os.path.join(ROOT, "grafana")

DATA_DIR = "/var/lib/weir"
METRICS_PORT = 9644
# Kubernetes versions whose schemas the manifests must satisfy: an old one still in
# wide use, and the newest the installed kubernetes-validate knows.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
# systemd-analyze security exposure, times ten (the unit scores 1.2 today).
SYSTEMD_EXPOSURE_MAX = 20


class Failed(Exception):
    pass


class Report:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, name, fn, *args):
        try:
            detail = fn(*args)
        except Failed as e:
            self.failures.append(name)
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a crash in a check is a failure too, with its cause
            self.failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        else:
            self.passed += 1
            print(f"PASS {name}" + (f" ({detail})" if detail else ""), flush=True)


def need(cond, msg):
    if not cond:
        raise Failed(msg)


def rel(path):
    return os.path.relpath(path, ROOT)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_yaml(path):
    try:
        return yaml.safe_load(read(path))
    except yaml.YAMLError as e:
        raise Failed(f"{rel(path)}: not valid YAML: {e}") from None


def load_yaml_all(path):
    try:
        return [d for d in yaml.safe_load_all(read(path)) if d is not None]
    except yaml.YAMLError as e:
        raise Failed(f"{rel(path)}: not valid YAML: {e}") from None


# ------------------------------------------------------------------ Weir settings

def broker_settings():
    """name -> kind of every broker setting in src/config/defs.rs (its BROKER_DEFS table)."""
    src = read(os.path.join(ROOT, "src", "config", "defs.rs"))
    defs = dict(re.findall(r'BrokerDef \{ name: "([^"]+)", kind: Kind::(\w+),', src))
    need(len(defs) >= 20, f"found only {len(defs)} BrokerDef entries in src/config/defs.rs: "
         "has the table's format changed? (this script reads it with a regex)")
    return defs


SETTINGS = {}


def parse_listeners(value, what):
    out = []
    for item in [p.strip() for p in value.split(",") if p.strip()]:
        m = re.fullmatch(r"([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:/]*):(\d+)", item)
        need(m, f"{what}: {item!r} is not NAME://host:port")
        port = int(m.group(3))
        need(0 < port < 65536, f"{what}: port of {item!r} out of range")
        out.append((m.group(1), m.group(2).strip("[]"), port))
    return out


def parse_voters(value):
    voters = {}
    for item in [p.strip() for p in value.split(",") if p.strip()]:
        m = re.fullmatch(r"(\d+)@([^:]+):(\d+)", item)
        need(m, f"controller.quorum.voters: {item!r} is not id@host:port")
        need(int(m.group(1)) not in voters, f"controller.quorum.voters: id {m.group(1)} twice")
        voters[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return voters


PER_LISTENER = []
MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512", "oauthbearer")


def per_listener_settings():
    """The settings src/config/security.rs lets a listener override (PER_LISTENER)."""
    src = read(os.path.join(ROOT, "src", "config", "security.rs"))
    m = re.search(r"pub const PER_LISTENER: &\[&str\] = &\[(.*?)\];", src, re.S)
    need(m, "src/config/security.rs has no PER_LISTENER table (this script reads it with "
         "a regex)")
    return re.findall(r'"([^"]+)"', m.group(1))


def base_setting(name):
    """The setting a name sets: `listener.name.<l>.<s>` overrides <s> for one listener
    (`listener.name.<l>.<mechanism>.sasl.jaas.config` for one mechanism), as
    src/config/security.rs reads them."""
    m = re.fullmatch(r"listener\.name\.([a-z0-9_-]+)\.(.+)", name)
    if not m:
        return name
    rest = m.group(2)
    mm = re.fullmatch(r"([a-z0-9-]+)\.(sasl\.jaas\.config|sasl\.server\.callback\.handler\.class)",
                      rest)
    if mm and mm.group(1) in MECHANISMS:
        return mm.group(2)
    need(rest in PER_LISTENER and rest not in ("sasl.jaas.config",
                                                "sasl.server.callback.handler.class"),
         f"{name}: {rest} cannot be set per listener (src/config/security.rs PER_LISTENER)")
    return rest


def check_settings(settings, where):
    """Names and values as src/config/defs.rs would accept them, plus the cluster rules."""
    for name, value in settings.items():
        kind = SETTINGS.get(base_setting(name))
        need(kind is not None, f"{where}: {name!r} is not a Weir setting (src/config/defs.rs)")
        ok = {
            "Bool": lambda v: v in ("true", "false"),
            "Int": lambda v: re.fullmatch(r"-?\d+", v) and -2**31 <= int(v) < 2**31,
            "Long": lambda v: re.fullmatch(r"-?\d+", v) and -2**63 <= int(v) < 2**63,
            "Double": lambda v: re.fullmatch(r"-?\d+(\.\d+)?([eE]-?\d+)?", v),
        }.get(kind, lambda v: True)(value)
        need(ok, f"{where}: {name}={value!r} is not a {kind.lower()}")
    listeners = parse_listeners(settings.get("listeners", "PLAINTEXT://127.0.0.1:9092"),
                                f"{where}: listeners")
    ctl_names = [n.strip() for n in settings.get("controller.listener.names", "").split(",")
                 if n.strip()]
    clients = [l for l in listeners if l[0] not in ctl_names]
    need(clients, f"{where}: no client listener (every listener is a controller listener)")
    adv = parse_listeners(settings.get("advertised.listeners", ""),
                          f"{where}: advertised.listeners")
    if "metrics.listen" in settings and settings["metrics.listen"]:
        need(re.fullmatch(r"[0-9.]+:\d+|\[[0-9a-fA-F:]+\]:\d+", settings["metrics.listen"]),
             f"{where}: metrics.listen {settings['metrics.listen']!r} is not ip:port")
    voters = parse_voters(settings.get("controller.quorum.voters", ""))
    if voters:
        node = int(settings.get("node.id", "1"))
        if node not in voters:
            # A learner (it joins the running quorum): the voters dial it back at its
            # advertised CONTROLLER address.
            need(any(l[0] in ctl_names for l in adv), f"{where}: node.id {node} is not a "
                 "voter, so it needs a CONTROLLER entry in advertised.listeners")
        need(len(listeners) > len(clients),
             f"{where}: controller.quorum.voters needs a listener named in "
             "controller.listener.names")
        roles = sorted({r.strip() for r in settings.get("process.roles", "broker,controller")
                        .split(",")})
        need(roles == ["broker", "controller"], f"{where}: process.roles must be "
             "broker,controller")
    return {"listeners": listeners, "clients": clients, "advertised": adv,
            "controller": [l for l in listeners if l[0] in ctl_names], "voters": voters}


def parse_properties(path):
    out = {}
    for n, line in enumerate(read(path).splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(("#", "!")):
            continue
        need("=" in s, f"{rel(path)}:{n}: expected name=value")
        k, v = (x.strip() for x in s.split("=", 1))
        need(k not in out, f"{rel(path)}:{n}: {k} is set twice")
        out[k] = v
    return out


def properties_from_text(text, where):
    with tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False) as f:
        f.write(text)
    try:
        return parse_properties(f.name)
    except Failed as e:
        raise Failed(str(e).replace(rel(f.name), where)) from None
    finally:
        os.unlink(f.name)


def metrics_port(settings, where, public):
    addr = settings.get("metrics.listen")
    need(addr, f"{where}: metrics.listen is not set (the default 127.0.0.1:9644 is "
         "unreachable from outside)" if public else f"{where}: metrics.listen is not set")
    host, port = addr.rsplit(":", 1)
    if public:
        need(host in ("0.0.0.0", "[::]"), f"{where}: metrics.listen={addr}: probes and "
             "Prometheus reach it from outside, it must listen on 0.0.0.0")
    need(int(port) == METRICS_PORT, f"{where}: metrics.listen port {port}, expected "
         f"{METRICS_PORT} (probes, HEALTHCHECK, Prometheus)")


# ---------------------------------------------------------------------- Dockerfile

def dockerfile_instructions(path):
    text = re.sub(r"\\\n", " ", "\n".join(
        l for l in read(path).splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_included(patterns, path):
    """Docker's rule, simplified: the last pattern matching the path or a parent wins."""
    def regex(p):
        p = p.strip().strip("/")
        r = ""
        i = 0
        while i < len(p):
            if p.startswith("**", i):
                r += ".*"
                i += 2
            elif p[i] == "*":
                r += "[^/]*"
                i += 1
            elif p[i] == "?":
                r += "[^/]"
                i += 1
            else:
                r += re.escape(p[i])
                i += 1
        return re.compile(r)
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for p in patterns:
        neg = p.startswith("!")
        rx = regex(p[1:] if neg else p)
        if any(rx.fullmatch(c) for c in candidates):
            included = neg
    return included


def check_dockerfile():
    path = os.path.join(DEPLOY, "Dockerfile")
    ins = dockerfile_instructions(path)
    stages = []
    for word, rest in ins:
        if word == "FROM":
            m = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            need(m, f"FROM {rest!r} unreadable")
            stages.append({"image": m.group(1), "name": m.group(2), "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
    need(len(stages) >= 2, f"{len(stages)} stage(s); expected a builder and a runtime stage")
    builder = stages[0]
    need(any(w == "RUN" and re.search(r"cargo build .*--release", r) for w, r in builder["ins"]),
         "the first stage does not run `cargo build --release`")
    final = stages[-1]
    need(any(w == "COPY" and f"--from={builder['name']}" in r for w, r in final["ins"]),
         f"the final stage does not COPY --from={builder['name']}")
    users = [r for w, r in final["ins"] if w == "USER"]
    need(users, "the final stage has no USER (it would run as root)")
    user = users[-1].split(":")[0]
    need(user not in ("root", "0"), f"the final stage runs as USER {users[-1]}")
    hc = [r for w, r in final["ins"] if w == "HEALTHCHECK"]
    need(hc and f"http://127.0.0.1:{METRICS_PORT}/health" in hc[-1],
         f"no HEALTHCHECK on http://127.0.0.1:{METRICS_PORT}/health in the final stage")
    exposed = {int(p.split("/")[0]) for w, r in final["ins"] if w == "EXPOSE" for p in r.split()}
    need({9092, 9093, METRICS_PORT} <= exposed, f"EXPOSE {sorted(exposed)}; expected 9092 9093 "
         f"{METRICS_PORT}")
    volumes = " ".join(r for w, r in final["ins"] if w == "VOLUME")
    need(DATA_DIR in volumes, f"no VOLUME {DATA_DIR}")
    # COPY sources from the context: present, and not excluded by the dockerignore.
    ignore = [l.strip() for l in read(os.path.join(DEPLOY, "Dockerfile.dockerignore"))
              .splitlines() if l.strip() and not l.startswith("#")]
    config_dest = None
    for stage in stages:
        for w, r in stage["ins"]:
            if w not in ("COPY", "ADD") or "--from=" in r:
                continue
            words = [x for x in r.split() if not x.startswith("--")]
            for src in words[:-1]:
                full = os.path.join(ROOT, src)
                need(os.path.exists(full), f"COPY source {src} does not exist")
                files = [src] if os.path.isfile(full) else [
                    os.path.relpath(os.path.join(d, f), ROOT)
                    for d, _, fs in os.walk(full) for f in fs]
                need(any(dockerignore_included(ignore, f) for f in files),
                     f"COPY source {src} is excluded by deploy/Dockerfile.dockerignore")
                if src.endswith("weir.properties"):
                    config_dest = (src, words[-1])
    need(config_dest, "no weir.properties is copied into the image")
    ep = [r for w, r in final["ins"] if w == "ENTRYPOINT"]
    need(ep, "no ENTRYPOINT")
    args = json.loads(ep[-1])
    need(args[0].endswith("/weir") and "--config" in args
         and args[args.index("--config") + 1] == config_dest[1],
         f"ENTRYPOINT {args} does not start weir with --config {config_dest[1]}")
    settings = parse_properties(os.path.join(ROOT, config_dest[0]))
    check_settings(settings, config_dest[0])
    metrics_port(settings, config_dest[0], public=True)
    need(settings.get("log.dirs") == DATA_DIR, f"{config_dest[0]}: log.dirs must be {DATA_DIR}")
    return f"{len(stages)} stages, USER {users[-1]}"


def image_settings():
    return parse_properties(os.path.join(DEPLOY, "docker", "weir.properties"))


# ------------------------------------------------------------------ compose

def compose():
    return load_yaml(os.path.join(DEPLOY, "compose.yaml"))


def check_compose_schema():
    schema = json.loads(read(os.path.join(DEPLOY, "schemas", "compose-spec.json")))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    need(not errors, "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]))
    return "deploy/schemas/compose-spec.json"


def mounts_of(service):
    """(source, target) of each volume of a compose service, short or long syntax."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v["target"])))
        else:
            parts = str(v).split(":")
            need(len(parts) >= 2, f"volume {v!r} has no target")
            out.append((parts[0], parts[1]))
    return out


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def weir_services(doc):
    return {n: s for n, s in doc["services"].items()
            if (s.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"}


def check_compose_weir():
    doc = compose()
    services = weir_services(doc)
    need(len(services) >= 3, f"{len(services)} Weir services (build deploy/Dockerfile); "
         "expected a 3-node cluster")
    nodes = {}
    for name, svc in services.items():
        where = f"deploy/compose.yaml services.{name}"
        settings = dict(image_settings())
        for k, v in env_of(svc).items():
            need(k.startswith("WEIR_"), f"{where}: environment {k} is not a WEIR_ variable")
            settings[k[len("WEIR_"):].lower().replace("_", ".")] = v
        parsed = check_settings(settings, where)
        metrics_port(settings, where, public=True)
        node = int(settings.get("node.id", "1"))
        need(node not in [n for n, _, _ in nodes.values()], f"{where}: node.id {node} twice")
        nodes[name] = (node, settings, parsed)
        need(parsed["controller"], f"{where}: no CONTROLLER listener")
        # The advertised client address: the service's name at a client listener port,
        # published on the host at the same port (host clients resolve the name to
        # 127.0.0.1 through /etc/hosts).
        need(parsed["advertised"], f"{where}: advertised.listeners is not set (clients "
             "would be told 127.0.0.1)")
        _, ahost, aport = parsed["advertised"][0]
        need(ahost in (name, svc.get("hostname")), f"{where}: advertises {ahost}, not the "
             f"service name {name}")
        need(aport in [p for _, _, p in parsed["clients"]], f"{where}: advertised port {aport} "
             "is not a client listener port")
        published = {}
        for p in svc.get("ports", []):
            m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)", str(p))
            need(m, f"{where}: ports entry {p!r} unreadable")
            published[int(m.group(3))] = int(m.group(2))
        need(published.get(aport) == aport, f"{where}: advertised port {aport} must be "
             f"published as {aport}:{aport} (host clients use the advertised port)")
        need(settings.get("log.dirs") == DATA_DIR, f"{where}: log.dirs must be {DATA_DIR}")
        need(DATA_DIR in [t for _, t in mounts_of(svc)], f"{where}: no volume mounted at "
             f"{DATA_DIR}")
    voter_sets = {json.dumps(p["voters"], sort_keys=True) for _, _, p in nodes.values()}
    need(len(voter_sets) == 1, "the Weir services have different controller.quorum.voters")
    voters = next(iter(nodes.values()))[2]["voters"]
    need(sorted(voters) == sorted(n for n, _, _ in nodes.values()),
         f"voter ids {sorted(voters)} are not the node ids "
         f"{sorted(n for n, _, _ in nodes.values())}")
    for name, (node, _, parsed) in nodes.items():
        host, port = voters[node]
        need(host == name, f"voter {node} is {host}, but node {node} is service {name}")
        need(port == parsed["controller"][0][2], f"voter {node} port {port} is not {name}'s "
             f"CONTROLLER port {parsed['controller'][0][2]}")
    return f"{len(nodes)} nodes, voters {','.join(f'{i}@{h}:{p}' for i, (h, p) in voters.items())}"


def check_compose_mounts():
    doc = compose()
    declared = set((doc.get("volumes") or {}).keys())
    networks = set((doc.get("networks") or {}).keys())
    for name, svc in doc["services"].items():
        for src, _ in mounts_of(svc):
            if src.startswith((".", "/")):
                need(os.path.exists(os.path.join(DEPLOY, src)),
                     f"services.{name}: bind mount source {src} does not exist")
            else:
                need(src in declared, f"services.{name}: volume {src} is not declared")
        for n in svc.get("networks", []):
            need(n in networks, f"services.{name}: network {n} is not declared")
        build = svc.get("build")
        if build:
            ctx = os.path.join(DEPLOY, build.get("context", "."))
            need(os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))),
                 f"services.{name}: build Dockerfile not found")
    prom = doc["services"]["prometheus"]
    pmounts = {t: s for s, t in mounts_of(prom)}
    need(pmounts.get("/etc/prometheus") == "./prometheus", "prometheus must mount "
         "./prometheus at /etc/prometheus")
    need("--config.file=/etc/prometheus/prometheus.yml" in prom.get("command", []),
         "prometheus command lacks --config.file=/etc/prometheus/prometheus.yml")
    graf = doc["services"]["grafana"]
    gmounts = {t: s for s, t in mounts_of(graf)}
    need(gmounts.get("/etc/grafana/provisioning") == "../grafana/provisioning",
         "grafana must mount ../grafana/provisioning at /etc/grafana/provisioning")
    need("../grafana/dashboards" in gmounts.values(), "grafana does not mount "
         "../grafana/dashboards")
    return f"{len(declared)} named volumes"


# --------------------------------------------------------------- Prometheus

def check_promtool(promtool):
    r = subprocess.run([promtool, "check", "config", os.path.join(DEPLOY, "prometheus",
                                                                  "prometheus.yml")],
                       capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    need(r.returncode == 0, out)
    files = re.findall(r"SUCCESS: (\d+) rule files found", out)
    rules = re.findall(r"SUCCESS: (\d+) rules found", out)
    need(files and int(files[0]) == len(rules), f"rule files not all checked:\n{out}")
    return f"{sum(map(int, rules))} rules in {len(rules)} rule file(s)"


def check_alert_rules(promtool):
    """`promtool check rules` on every rule file, `promtool test rules` on their tests,
    and every alert covered by the tests both firing and not firing."""
    pdir = os.path.join(DEPLOY, "prometheus")
    cfg = load_yaml(os.path.join(pdir, "prometheus.yml"))
    rule_files = [os.path.join(pdir, f) for f in cfg.get("rule_files", [])]
    need(rule_files, "prometheus.yml loads no rule files")
    r = subprocess.run([promtool, "check", "rules", *rule_files], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    need(r.returncode == 0, f"promtool check rules:\n{out}")
    alerts = {}
    for f in rule_files:
        for g in load_yaml(f)["groups"]:
            for rule in g["rules"]:
                if "alert" in rule:
                    need(rule["alert"] not in alerts, f"alert {rule['alert']} defined twice")
                    need((rule.get("labels") or {}).get("severity") in ("critical", "warning"),
                         f"alert {rule['alert']}: severity must be critical or warning")
                    need((rule.get("annotations") or {}).get("summary"),
                         f"alert {rule['alert']} has no summary annotation")
                    alerts[rule["alert"]] = rule
    tests = sorted(f for f in os.listdir(pdir) if f.endswith(("_test.yml", "_test.yaml")))
    need(tests, f"no rule tests (*_test.yml) in {rel(pdir)}")
    fired, quiet = set(), set()
    for t in tests:
        doc = load_yaml(os.path.join(pdir, t))
        tested = {os.path.normpath(os.path.join(pdir, f)) for f in doc.get("rule_files", [])}
        need(tested >= {os.path.normpath(f) for f in rule_files},
             f"{t} does not load every rule file of prometheus.yml")
        for case in doc.get("tests", []):
            for a in case.get("alert_rule_test", []):
                need(a["alertname"] in alerts, f"{t}: {a['alertname']} is not an alert")
                (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
    need(set(alerts) <= fired, f"alerts never tested firing: {sorted(set(alerts) - fired)}")
    need(set(alerts) <= quiet, f"alerts never tested not firing: {sorted(set(alerts) - quiet)}")
    r = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True,
                       cwd=pdir)
    out = (r.stdout + r.stderr).strip()
    need(r.returncode == 0, f"promtool test rules:\n{out}")
    return (f"{len(alerts)} alerts, each tested firing and not firing "
            f"({', '.join(tests)})")


def check_prometheus_targets():
    cfg = load_yaml(os.path.join(DEPLOY, "prometheus", "prometheus.yml"))
    for f in cfg.get("rule_files", []):
        need(os.path.isfile(os.path.join(DEPLOY, "prometheus", f)) or "*" in f,
             f"rule file {f} is missing")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    need("weir" in jobs, "no scrape job `weir`")
    targets = {t for sc in jobs["weir"].get("static_configs", []) for t in sc["targets"]}
    expected = {f"{n}:{METRICS_PORT}" for n in weir_services(compose())}
    need(targets == expected, f"weir targets {sorted(targets)}, compose services give "
         f"{sorted(expected)}")
    need(jobs["weir"].get("metrics_path", "/metrics") == "/metrics", "metrics_path is not "
         "/metrics")
    return ", ".join(sorted(targets))


# ------------------------------------------------------------------ Grafana

def check_grafana_datasources():
    d = os.path.join(GRAFANA, "provisioning", "datasources")
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))
    need(files, f"no data source files in {rel(d)}")
    names = []
    for f in files:
        doc = load_yaml(os.path.join(d, f))
        need(isinstance(doc, dict) and doc.get("apiVersion") == 1, f"{f}: apiVersion must be 1")
        ds = doc.get("datasources")
        need(isinstance(ds, list) and ds, f"{f}: `datasources` must be a non-empty list")
        for s in ds:
            for key in ("name", "type", "url", "access"):
                need(isinstance(s.get(key), str) and s[key], f"{f}: a data source lacks {key}")
            need(s["access"] in ("proxy", "direct"), f"{f}: access {s['access']!r}")
            if s["type"] == "prometheus":
                m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", s["url"])
                need(m, f"{f}: url {s['url']!r}")
                need(m.group(1) in compose()["services"], f"{f}: {m.group(1)} is not a compose "
                     "service")
            names.append(s["name"])
    defaults = sum(1 for f in files for s in load_yaml(os.path.join(d, f))["datasources"]
                   if s.get("isDefault"))
    need(defaults == 1, f"{defaults} default data sources; the dashboards pick the default")
    return ", ".join(names)


def check_grafana_dashboards():
    d = os.path.join(GRAFANA, "provisioning", "dashboards")
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))
    need(files, f"no dashboard provider files in {rel(d)}")
    graf = compose()["services"]["grafana"]
    mounts = {t: s for s, t in mounts_of(graf)}
    count = 0
    for f in files:
        doc = load_yaml(os.path.join(d, f))
        need(isinstance(doc, dict) and doc.get("apiVersion") == 1, f"{f}: apiVersion must be 1")
        providers = doc.get("providers")
        need(isinstance(providers, list) and providers, f"{f}: `providers` must be a "
             "non-empty list")
        for p in providers:
            need(p.get("name") and p.get("type") == "file", f"{f}: a provider needs a name "
                 "and type: file")
            path = (p.get("options") or {}).get("path")
            need(path, f"{f}: provider {p['name']} has no options.path")
            need(path in mounts, f"{f}: options.path {path} is not mounted by compose's "
                 f"grafana service (mounts: {sorted(mounts)})")
            src = os.path.join(DEPLOY, mounts[path])
            dashboards = [x for x in os.listdir(src) if x.endswith(".json")]
            need(dashboards, f"{f}: no dashboards in {rel(src)}")
            for x in dashboards:
                try:
                    json.loads(read(os.path.join(src, x)))
                except ValueError as e:
                    raise Failed(f"{rel(os.path.join(src, x))}: {e}") from None
            count += len(dashboards)
    return f"{count} dashboard(s)"


# --------------------------------------------------------------- Kubernetes

def k8s_docs():
    docs = {}
    for f in sorted(os.listdir(K8S)):
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml":
            docs[f] = load_yaml_all(os.path.join(K8S, f))
    return docs


def check_k8s_schemas():
    n = 0
    for f, docs in k8s_docs().items():
        for doc in docs:
            for version in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = "/".join(map(str, e.path))
                    raise Failed(f"{f} {doc.get('kind')}/{doc['metadata'].get('name')} "
                                 f"(Kubernetes {version}): {path}: {e.message}") from None
                except (kubernetes_validate.SchemaNotFoundError,
                        kubernetes_validate.InvalidSchemaError) as e:
                    raise Failed(f"{f}: {e}") from None
            n += 1
    return f"{n} objects, strict, Kubernetes {' and '.join(K8S_VERSIONS)}"


def check_kustomization(kubectl):
    k = load_yaml(os.path.join(K8S, "kustomization.yaml"))
    need(k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1" and
         k.get("kind") == "Kustomization", "kustomization.yaml: apiVersion/kind")
    resources = k.get("resources") or []
    need(sorted(resources) == sorted(k8s_docs()), f"resources {resources} are not exactly "
         f"the manifests {sorted(k8s_docs())}")
    if not kubectl:
        return "resources list (kubectl not installed: not rendered)"
    r = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True)
    need(r.returncode == 0, f"kubectl kustomize: {r.stderr.strip()}")
    rendered = [d for d in yaml.safe_load_all(r.stdout) if d]
    expected = sum(len(d) for d in k8s_docs().values())
    need(len(rendered) == expected, f"kubectl kustomize rendered {len(rendered)} objects, "
         f"expected {expected}")
    return f"{len(resources)} resources; kubectl kustomize renders {len(rendered)} objects"


def k8s_objects():
    objs = {}
    for docs in k8s_docs().values():
        for d in docs:
            objs[(d["kind"], d["metadata"]["name"])] = d
    return objs


def one(objs, kind):
    found = [o for (k, _), o in objs.items() if k == kind]
    need(len(found) == 1, f"{len(found)} {kind} objects, expected 1")
    return found[0]


def check_k8s_consistency():
    objs = k8s_objects()
    sts = one(objs, "StatefulSet")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    need(spec["selector"]["matchLabels"].items() <= labels.items(),
         "StatefulSet selector does not match its pod labels")
    need(spec.get("podManagementPolicy") == "Parallel", "podManagementPolicy must be "
         "Parallel: a node is ready only once the quorum formed, which needs its peers")
    headless = objs.get(("Service", spec["serviceName"]))
    need(headless, f"serviceName {spec['serviceName']} is not a Service here")
    need(headless["spec"].get("clusterIP") == "None", "the serviceName Service is not headless")
    need(headless["spec"].get("publishNotReadyAddresses") is True,
         "the headless Service must publishNotReadyAddresses (peers resolve before ready)")
    (c,) = [c for c in pod["containers"] if c["name"] == "weir"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(ports.get("metrics") == METRICS_PORT, f"container port `metrics` is not {METRICS_PORT}")
    for kind, o in objs.items():
        if kind[0] == "Service":
            need(o["spec"]["selector"].items() <= labels.items(),
                 f"Service {kind[1]} selects no StatefulSet pod")
            for p in o["spec"]["ports"]:
                need(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
                     f"Service {kind[1]} targetPort {p.get('targetPort')} is not a container port")
    pdb = one(objs, "PodDisruptionBudget")
    need(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(),
         "the PodDisruptionBudget selects no StatefulSet pod")
    need(pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable must be 1")
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        need(g.get("path") == path and g.get("port") in ("metrics", METRICS_PORT),
             f"{probe} must GET {path} on the metrics port")
    sc = pod.get("securityContext") or {}
    need(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0,
         "the pod must run as non-root (runAsNonRoot, runAsUser)")
    need(sc.get("fsGroup"), "no fsGroup: the volume would not be writable by the weir user")
    csc = c.get("securityContext") or {}
    need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        need({"cpu", "memory"} <= set(res.get(part, {})), f"resources.{part} needs cpu and memory")
    env = {e["name"]: e for e in c.get("env", [])}
    voters = env.get("VOTERS", {}).get("value", "")
    need(voters.isdigit() and int(voters) % 2 == 1 and int(voters) <= spec["replicas"],
         "env VOTERS must be an odd number of voter pods, at most spec.replicas")
    need(env.get("HEADLESS_SERVICE", {}).get("value") == spec["serviceName"],
         "env HEADLESS_SERVICE must equal spec.serviceName")
    for var, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        need(env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
             == field, f"env {var} must come from {field} (downward API)")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    cm_vol = [n for n, v in vols.items() if "configMap" in v]
    need(len(cm_vol) == 1, "expected one ConfigMap volume")
    cm_name = vols[cm_vol[0]]["configMap"]["name"]
    need(("ConfigMap", cm_name) in objs, f"ConfigMap {cm_name} is not defined here")
    need(mounts.get(cm_vol[0]) == "/etc/weir", "the ConfigMap must be mounted at /etc/weir")
    need(c.get("command") == ["/bin/sh", "/etc/weir/entrypoint.sh"],
         "the container must run /etc/weir/entrypoint.sh")
    claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
    need(claims and mounts.get(claims[0]) == DATA_DIR, f"no volumeClaimTemplate mounted at "
         f"{DATA_DIR}")
    need(spec["replicas"] >= 3, "fewer than 3 replicas")
    return f"{spec['replicas']} replicas, serviceName {spec['serviceName']}"


def run_entrypoint(script, env):
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "weir")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
        os.chmod(fake, 0o755)
        path = os.path.join(tmp, "entrypoint.sh")
        with open(path, "w") as f:
            f.write(script)
        full = {"PATH": f"{tmp}:/usr/bin:/bin", **env}
        return subprocess.run(["/bin/sh", path], capture_output=True, text=True, env=full)


def check_k8s_entrypoint(shellcheck):
    objs = k8s_objects()
    sts = one(objs, "StatefulSet")
    spec = sts["spec"]
    (c,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "weir"]
    cm = objs[("ConfigMap", [v for v in spec["template"]["spec"]["volumes"]
                             if "configMap" in v][0]["configMap"]["name"])]
    script = cm["data"]["entrypoint.sh"]
    base = properties_from_text(cm["data"]["weir.properties"], "ConfigMap weir.properties")
    r = subprocess.run(["/bin/sh", "-n"], input=script, capture_output=True, text=True)
    need(r.returncode == 0, f"sh -n: {r.stderr.strip()}")
    if shellcheck:
        r = subprocess.run([shellcheck, "-s", "sh", "-"], input=script, capture_output=True,
                           text=True)
        need(r.returncode == 0, f"shellcheck:\n{r.stdout}")
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    ns, domain = "weir-check", env.get("CLUSTER_DOMAIN", "cluster.local")
    name, svc, replicas = sts["metadata"]["name"], spec["serviceName"], spec["replicas"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    voters = int(env["VOTERS"])
    # Two pods more than the replicas: what scaling up starts (learners).
    for ordinal in range(replicas + 2):
        pod = f"{name}-{ordinal}"
        r = run_entrypoint(script, {**env, "POD_NAME": pod, "POD_NAMESPACE": ns})
        need(r.returncode == 0, f"entrypoint.sh as {pod}: exit {r.returncode}: {r.stderr}")
        args = r.stdout.splitlines()
        need(args[:2] == ["--config", "/etc/weir/weir.properties"],
             f"as {pod}: weir started with {args[:2]}, not --config /etc/weir/weir.properties")
        sets = {}
        for i, a in enumerate(args[2:]):
            if a == "--set":
                k, _, v = args[2 + i + 1].partition("=")
                sets[k] = v
        settings = {**base, **sets}
        where = f"pod {pod}"
        parsed = check_settings(settings, where)
        metrics_port(settings, where, public=True)
        need(settings.get("log.dirs") == DATA_DIR, f"{where}: log.dirs must be {DATA_DIR}")
        need(settings.get("node.id") == str(ordinal + 1), f"{where}: node.id "
             f"{settings.get('node.id')}, expected {ordinal + 1}")
        ctl_port = parsed["controller"][0][2]
        need(ctl_port == ports.get("controller"), f"{where}: CONTROLLER listener port "
             f"{ctl_port} is not container port `controller`")
        want = {i + 1: (f"{name}-{i}.{svc}.{ns}.svc.{domain}", ctl_port) for i in range(voters)}
        need(parsed["voters"] == want, f"{where}: voters {parsed['voters']}, expected {want}")
        # A learner is dialled at its advertised CONTROLLER address.
        ctl_adv = f"CONTROLLER://{pod}.{svc}.{ns}.svc.{domain}:{ctl_port}"
        need(ctl_adv in settings.get("advertised.listeners", "").split(","),
             f"{where}: advertised.listeners lacks {ctl_adv}")
        need(parsed["advertised"] and parsed["advertised"][0][1:] ==
             (f"{pod}.{svc}.{ns}.svc.{domain}", ports.get("kafka")),
             f"{where}: advertised {parsed['advertised']}, expected its DNS name at port "
             f"{ports.get('kafka')}")
        need(ports.get("kafka") in [p for _, _, p in parsed["clients"]],
             f"{where}: container port `kafka` is not a client listener port")
    r = run_entrypoint(script, {**env, "POD_NAME": "weir", "POD_NAMESPACE": ns})
    need(r.returncode != 0, "entrypoint.sh accepts a pod name without an ordinal")
    return (f"node.id, voters and advertised listeners of {replicas} pods "
            f"({voters} voters) and of 2 pods added by scaling") + (
        "; shellcheck clean" if shellcheck else "; shellcheck not installed")


# ------------------------------------------------------------------ systemd

def unit_directives(path):
    out = {}
    section = None
    for line in read(path).splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        if s.startswith("["):
            section = s.strip("[]")
            continue
        k, _, v = s.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def seconds(v):
    m = re.fullmatch(r"(\d+)\s*(s|min|m)?", v)
    need(m, f"cannot read the duration {v!r}")
    return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1)


def check_systemd_directives():
    path = os.path.join(DEPLOY, "systemd", "weir.service")
    d = unit_directives(path)
    g = lambda k: (d.get(("Service", k)) or [None])[-1]  # noqa: E731
    need(g("Type") == "simple", "Type must be simple (weir does not speak sd_notify)")
    need(g("User") and g("User") not in ("root", "0"), "User must be a non-root user")
    need(g("Restart") == "on-failure", "Restart must be on-failure")
    need(g("KillSignal") == "SIGTERM", "KillSignal must be SIGTERM (controlled shutdown)")
    need(g("TimeoutStopSec") and seconds(g("TimeoutStopSec")) >= 60,
         "TimeoutStopSec must leave at least 60 s for the controlled shutdown")
    need(g("LimitNOFILE") and int(g("LimitNOFILE")) >= 65536, "LimitNOFILE must be >= 65536")
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict")):
        need(g(k) == v, f"{k} must be {v}")
    need(DATA_DIR in " ".join(d.get(("Service", "ReadWritePaths"), [])),
         f"ReadWritePaths must include {DATA_DIR}")
    exec_start = g("ExecStart").split()
    need(exec_start[1:3] == ["--config", "/etc/weir/weir.properties"],
         f"ExecStart {exec_start} does not read /etc/weir/weir.properties")
    props = os.path.join(DEPLOY, "systemd", "weir.properties")
    settings = parse_properties(props)
    check_settings(settings, rel(props))
    metrics_port(settings, rel(props), public=False)
    need(settings.get("log.dirs", "").startswith(DATA_DIR),
         f"{rel(props)}: log.dirs must be under {DATA_DIR} (the only writable path)")
    need(g("StateDirectory") == os.path.basename(DATA_DIR),
         f"StateDirectory must be {os.path.basename(DATA_DIR)}")
    return f"User={g('User')}, TimeoutStopSec={g('TimeoutStopSec')}"


def check_systemd_analyze(systemd_analyze):
    src = os.path.join(DEPLOY, "systemd", "weir.service")
    with tempfile.TemporaryDirectory() as tmp:
        stand_in = os.path.join(tmp, "weir")
        with open(stand_in, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(stand_in, 0o755)
        text = read(src)
        binary = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
        unit = os.path.join(tmp, "weir.service")
        with open(unit, "w") as f:
            f.write(re.sub(r"^ExecStart=\S+", f"ExecStart={stand_in}", text, flags=re.M))
        r = subprocess.run([systemd_analyze, "verify", "--man=no", unit],
                           capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        # verify exits 0 on warnings (unknown keys, unparsable values): any output fails.
        need(r.returncode == 0 and not out, f"systemd-analyze verify: {out or r.returncode}")
        r = subprocess.run([systemd_analyze, "security", "--offline=yes",
                            f"--threshold={SYSTEMD_EXPOSURE_MAX}", "--no-pager", unit],
                           capture_output=True, text=True)
        level = re.search(r"Overall exposure level for weir.service: ([\d.]+ \w+)", r.stdout)
        need(r.returncode == 0, f"systemd-analyze security: exposure "
             f"{level.group(1) if level else '?'} is above {SYSTEMD_EXPOSURE_MAX / 10}"
             f"\n{r.stderr.strip()}")
    return f"verify clean (ExecStart {binary} -> a stand-in), security exposure " + (
        level.group(1) if level else "?")


# --------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--systemd-analyze", required=True)
    ap.add_argument("--shellcheck", default="")
    ap.add_argument("--kubectl", default="")
    ap.add_argument("--openssl", default="openssl")
    a = ap.parse_args()
    rep = Report()
    try:
        SETTINGS.update(broker_settings())
        PER_LISTENER.extend(per_listener_settings())
    except Failed as e:
        print(f"FAIL settings table: {e}")
        return 1
    rep.check("Dockerfile", check_dockerfile)
    rep.check("compose: Compose Specification schema", check_compose_schema)
    rep.check("compose: Weir cluster settings", check_compose_weir)
    rep.check("compose: volumes, mounts, networks", check_compose_mounts)
    import validate_secure
    this = sys.modules[__name__]
    rep.check("compose secure: schema, secrets, TLS and SASL settings",
              validate_secure.check_compose_secure, this, a.openssl)
    rep.check("prometheus: promtool check config", check_promtool, a.promtool)
    rep.check("prometheus: promtool check rules, test rules", check_alert_rules, a.promtool)
    rep.check("prometheus: scrape targets", check_prometheus_targets)
    rep.check("grafana: data sources", check_grafana_datasources)
    rep.check("grafana: dashboard providers", check_grafana_dashboards)
    rep.check("k8s: schemas", check_k8s_schemas)
    rep.check("k8s: kustomization", check_kustomization, a.kubectl)
    rep.check("k8s: objects agree", check_k8s_consistency)
    rep.check("k8s: entrypoint.sh", check_k8s_entrypoint, a.shellcheck)
    rep.check("k8s secure: overlay, Secrets, TLS and SASL settings",
              validate_secure.check_k8s_secure, this, a.openssl, a.kubectl)
    rep.check("systemd: directives and weir.properties", check_systemd_directives)
    rep.check("systemd: systemd-analyze verify and security", check_systemd_analyze,
              a.systemd_analyze)
    print(f"{rep.passed} passed, {len(rep.failures)} failed")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
