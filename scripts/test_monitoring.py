#!/usr/bin/env python3
"""Live check of the dashboards and alerting rules against a real cluster and Prometheus.

Run by scripts/test-monitoring, which installs what it needs and passes the binaries and
free ports. Python standard library only. Steps:

 1. starts a 3-node cluster with scripts/cluster (metrics on 127.0.0.1, node I on
    METRICS_BASE+I-1; the CONTROLLER listener on mutual TLS with certificates made by
    openssl; a SASL_PLAINTEXT listener, the StandardAuthorizer and an audit log) and
    Prometheus scraping it every second with
    deploy/prometheus/alerts.yml loaded (evaluated every second);
 2. checks /health and /ready on every node's metrics port;
 3. drives load with kcat: a keyed acks=all producer to topic `load` (3 partitions,
    replication factor 3, small segments and retention.bytes: segments roll and are
    deleted), a consumer group committing offsets, one produce that is too large (a
    MESSAGE_TOO_LARGE answer, so request errors exist), keyed records to a compacted
    topic with tiny segments (the cleaner runs) and compression.type=zstd (the leader
    recompresses), an offset committed with a 1 ms
    retention (it expires), a topic `solo` with one replica, on node 3, a
    connection that is not TLS to node 1's CONTROLLER listener (a failed handshake), and
    on node 1's SASL listener a login refused a topic, a wrong password and a session
    that ends (the authentication, authorization and audit metrics);
 4. healthy: Prometheus scrapes every node, has loaded exactly the alerts of alerts.yml,
    every rule evaluates without error, no alert expression returns anything (the disk
    alerts excepted when this machine's disk really is over 70% full: a note), and
    every alert's signal returns series (the expression split at top-level
    and/or/unless, each operand without a trailing comparison with a number, absent(x)
    read as x: the metrics and labels it reads exist);
 5. failure: node 3 is killed; the expressions of WeirBrokerDown, WeirBrokerFenced,
    WeirUnderReplicatedPartitions and WeirOfflinePartitions must return series (the `for`
    durations are not waited for; promtool test rules covers them); node 3 is restarted;
 6. every query of every dashboard (panel targets and template variable queries, the
    variables replaced: job by `weir`, the others by `.+` so that a misspelt label
    matches nothing, $__rate_interval by 15s, ...) must return series; NaN-only answers
    (a quantile of a histogram without recent observations) count as data and are
    listed. A query empty only because it reads a metric of EXPECTED_MISSING (defined,
    not exported yet) is a known gap, listed, not a failure.

Prints one line per failure and a summary; exit status 1 if a check failed.
"""
import argparse
import base64
import json
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARDS = os.path.join(ROOT, "grafana", "dashboards")
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
JOB = "weir"
# Grafana's built-in variables, as the check substitutes them (1 s scrapes).
BUILTINS = {"__rate_interval": "15s", "__interval": "2s", "__interval_ms": "2000",
            "__range": "1m", "__range_s": "60", "__range_ms": "60000"}
# Alerts whose expressions must return series once node 3 is killed (45 s each at most).
FAILURE_ALERTS = ["WeirBrokerDown", "WeirBrokerFenced", "WeirUnderReplicatedPartitions",
                  "WeirOfflinePartitions"]
# Settings of the test cluster: fast fencing and ISR shrinks so the failure phase is short.
CLUSTER_SETS = [
    "num.partitions=3", "default.replication.factor=3", "min.insync.replicas=2",
    "offsets.topic.num.partitions=3", "offsets.topic.replication.factor=3",
    "broker.session.timeout.ms=6000", "broker.heartbeat.interval.ms=1000",
    "replica.lag.time.max.ms=3000", "group.initial.rebalance.delay.ms=0",
    # retention and the cleaner every 2 s, offset expiry every second
    "log.retention.check.interval.ms=2000", "offsets.retention.check.interval.ms=1000",
]
# The CONTROLLER listener (Raft, heartbeats) runs on mutual TLS with certificates made
# by make_pki, so the TLS metrics exist (a garbage connection to it makes a failed
# handshake).
def tls_sets(pki):
    return [f"listener.name.controller.ssl.keystore.location={pki}/node.pem",
            f"listener.name.controller.ssl.truststore.location={pki}/ca.pem",
            "listener.name.controller.ssl.client.auth=required"]


# Every node also has a SASL_PLAINTEXT listener on P+200+I-1 (PLAIN users admin and
# alice, sessions of 1 s), the StandardAuthorizer (the PLAINTEXT load runs as
# User:ANONYMOUS, a super user; alice has no ACL) and an audit log of one event a second,
# so the authentication, authorization and audit metrics exist (see sasl_traffic), and
# OAUTHBEARER with a key set in a file (the key-set metrics).
SASL_USERS = {"admin": "admin-secret", "alice": "alice-secret"}


def make_jwks(path):
    """An OAUTHBEARER key set with one RSA key made with openssl, so the key-set
    metrics exist (no token is signed with it)."""
    key = subprocess.run(["openssl", "genrsa", "2048"], check=True, capture_output=True).stdout
    out = subprocess.run(["openssl", "rsa", "-noout", "-modulus"], input=key, check=True,
                         capture_output=True).stdout.decode()
    modulus = bytes.fromhex(out.strip().split("=", 1)[1])
    n = base64.urlsafe_b64encode(modulus).rstrip(b"=").decode()
    with open(path, "w") as f:
        json.dump({"keys": [{"kty": "RSA", "kid": "monitoring", "use": "sig", "n": n,
                             "e": "AQAB"}]}, f)


def security_sets(audit_dir):
    make_jwks(os.path.join(audit_dir, "jwks.json"))
    return ["listeners=PLAINTEXT://127.0.0.1:{client},SASL_PLAINTEXT://127.0.0.1:{extra},"
            "CONTROLLER://127.0.0.1:{ctl}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "CONTROLLER:SSL",
            "inter.broker.listener.name=PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,OAUTHBEARER",
            f"sasl.oauthbearer.jwks.endpoint.url=file:{audit_dir}/jwks.json",
            "listener.name.sasl_plaintext.connections.max.reauth.ms=1000",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:ANONYMOUS;User:admin",
            f"audit.log.file={audit_dir}/audit-{{node}}.log",
            "audit.log.events.per.second=1"]


def jaas_env():
    """The PLAIN users, as WEIR_SASL_JAAS_CONFIG (WEIR_CLUSTER_SETS splits at spaces)."""
    users = " ".join(f'user_{u}="{p}"' for u, p in SASL_USERS.items())
    return {"WEIR_SASL_JAAS_CONFIG":
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"}


def make_pki(d):
    """A CA and one node certificate (valid for 127.0.0.1, 30 days) made with openssl,
    as the README's secured cluster does; node.pem holds the key and the certificate."""
    os.makedirs(d, exist_ok=True)
    def run(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "365",
        "-subj", "/CN=weir monitoring CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=weir node")
    with open(os.path.join(d, "node.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
    run("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "node.crt", "-days", "30", "-extfile", "node.ext")
    with open(os.path.join(d, "node.pem"), "w") as f:
        f.write(open(os.path.join(d, "node.key")).read() + open(os.path.join(d, "node.crt")).read())
    return d


# Metrics src/metrics.rs defines that the broker does not export yet. A query that
# returns nothing only because it reads one of these is reported as a known gap, not a
# failure; once the metric is exported, the check fails until it is removed from here.
EXPECTED_MISSING: dict = {}
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0
        self.notes = []
        self.queries = {}  # kind -> number of distinct PromQL queries checked
        self.known = []  # empty answers explained by EXPECTED_MISSING

    def ok(self):
        self.passed += 1

    def counted(self, kind, n=1):
        self.queries[kind] = self.queries.get(kind, 0) + n

    def fail(self, what, why):
        self.failures.append(what)
        print(f"FAIL {what}: {why}", flush=True)


# ------------------------------------------------------------------------ HTTP

def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url, timeout=10)
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise RuntimeError(f"{doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr):
        """The instant vector (or scalar, as one sample) `expr` evaluates to now."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]


# ---------------------------------------------------------------- PromQL signals

def _scan(expr):
    """Yields (index, char, depth) outside strings; depth counts (), {} and []."""
    depth = 0
    quote = None
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        else:
            yield i, c, depth
        i += 1


def _is_ident(c):
    return c.isalnum() or c in "_:"


def split_top(expr, words=("and", "or", "unless")):
    """Operands of the top-level set operators of expr."""
    cuts = []
    for i, c, depth in _scan(expr):
        if depth or not c.isalpha() or (i and _is_ident(expr[i - 1])):
            continue
        for w in words:
            end = i + len(w)
            if expr[i:end] == w and (end == len(expr) or not _is_ident(expr[end])):
                cuts.append((i, end))
    parts, start = [], 0
    for a, b in cuts:
        parts.append(expr[start:a])
        start = b
    parts.append(expr[start:])
    return [p.strip() for p in parts]


def strip_outer_parens(expr):
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0:
                break
        if i != len(expr) - 1:
            break
        expr = expr[1:-1].strip()
    return expr


NUMBER = re.compile(r"\s*(bool\s+)?[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def strip_comparison(expr):
    """`x > 0.5` -> `x`: the last top-level comparison with a number on its right."""
    last = None
    for i, c, depth in _scan(expr):
        if depth:
            continue
        two = expr[i:i + 2]
        if two in ("==", "!=", ">=", "<="):
            last = (i, i + 2)
        elif c in "<>" and expr[i - 1:i + 1] not in ("<=", ">=") and two not in (">=", "<="):
            last = (i, i + 1)
    if last and NUMBER.match(expr[last[1]:]):
        return expr[:last[0]].strip()
    return expr


MODIFIERS = re.compile(r"^\s*(?:(?:on|ignoring)\s*\([^)]*\)\s*)?"
                       r"(?:(?:group_left|group_right)\s*(?:\([^)]*\))?\s*)?")


def signals(expr):
    """The series-producing parts of a condition (see the module docstring)."""
    out = []
    for op in split_top(strip_outer_parens(expr)):
        op = MODIFIERS.sub("", op, count=1).strip()
        op = strip_comparison(strip_outer_parens(op))
        op = strip_outer_parens(op)
        m = re.fullmatch(r"absent(?:_over_time)?\((.*)\)", op, re.S)
        if m:
            op = m.group(1).strip()
        if re.fullmatch(r"vector\([^)]*\)", op):
            continue
        if len(split_top(op)) > 1:
            out.extend(signals(op))
        else:
            out.append(op)
    return out


# ------------------------------------------------------------------- the cluster

class Cluster:
    def __init__(self, a):
        self.a = a
        self.dir = os.path.join(a.dir, "cluster")
        pki = make_pki(os.path.join(a.dir, "pki"))
        self.env = {**os.environ, "WEIR_BIN": a.weir, "TMPDIR": a.dir,
                    "WEIR_CLUSTER_METRICS_BASE": str(a.metrics_base),
                    "WEIR_CLUSTER_SETS": " ".join(CLUSTER_SETS + tls_sets(pki)
                                                  + security_sets(a.dir)),
                    **jaas_env()}
        self.bootstrap = ",".join(f"127.0.0.1:{a.base_port + i}" for i in range(3))

    def run(self, *args, timeout=120):
        r = subprocess.run([os.path.join(ROOT, "scripts", "cluster"), *args, "--dir", self.dir],
                           env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"scripts/cluster {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def metrics_url(self, node, path):
        return f"http://127.0.0.1:{self.a.metrics_base + node - 1}{path}"

    def instance(self, node):
        return f"127.0.0.1:{self.a.metrics_base + node - 1}"


def kafka_request(port, api_key, version, body, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        client = b"weir-test-monitoring"
        req = struct.pack(">hhih", api_key, version, 1, len(client)) + client + body
        s.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf[8:]  # size and correlation id
    finally:
        s.close()


def s16(x):
    b = x.encode()
    return struct.pack(">h", len(b)) + b


def create_topic(cluster, name, partitions=-1, rf=-1, assignment=None, configs=None):
    """CreateTopics v2: partitions and replication factor, or a manual assignment
    ({partition: [brokers]}), and topic configs."""
    body = struct.pack(">i", 1) + s16(name) + struct.pack(">ih", partitions, rf)
    assignment = assignment or {}
    body += struct.pack(">i", len(assignment))
    for p, brokers in assignment.items():
        body += struct.pack(">ii", p, len(brokers)) + b"".join(struct.pack(">i", b) for b in brokers)
    configs = configs or {}
    body += struct.pack(">i", len(configs))
    for k, v in configs.items():
        body += s16(k) + s16(v)
    body += struct.pack(">ib", 10000, 0)  # timeout_ms, validate_only
    last = None
    for i in range(3):  # any node; the controller if the others refuse
        r = kafka_request(cluster.a.base_port + i, 19, 2, body)
        # throttle_time_ms, then [name, error_code, error_message]
        (n,) = struct.unpack_from(">i", r, 4)
        (ln,) = struct.unpack_from(">h", r, 8)
        (code,) = struct.unpack_from(">h", r, 10 + ln)
        if n == 1 and code in (0, 36):  # created, or already exists
            return
        last = code
    raise RuntimeError(f"CreateTopics {name}: error code {last}")


class KafkaConn:
    """One connection for a sequence of requests (a SASL session)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def request(self, api_key, version, body):
        client = b"weir-test-monitoring"
        req = struct.pack(">hhih", api_key, version, 1, len(client)) + client + body
        self.s.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf[8:]

    def login(self, user, password):
        """SaslHandshake v1 PLAIN, SaslAuthenticate v0; the error code."""
        r = self.request(17, 1, s16("PLAIN"))
        if struct.unpack_from(">h", r, 0)[0] != 0:
            raise RuntimeError("SaslHandshake PLAIN refused")
        token = f"\0{user}\0{password}".encode()
        r = self.request(36, 0, struct.pack(">i", len(token)) + token)
        return struct.unpack_from(">h", r, 0)[0]

    def close(self):
        self.s.close()


def sasl_traffic(cluster):
    """On node 1's SASL listener: alice logs in and is refused the topic `load` (no
    ACL), a wrong password, and a session that ends (1 s) before its next request; all
    within a second, over the audit log's budget of one event a second."""
    port = cluster.a.base_port + 200
    c = KafkaConn(port)
    if c.login("alice", SASL_USERS["alice"]) != 0:
        raise RuntimeError("alice cannot log in")
    r = c.request(3, 1, struct.pack(">i", 1) + s16("load"))  # Metadata v1
    (nb,) = struct.unpack_from(">i", r, 0)
    off = 4
    for _ in range(nb):  # node id, host, port, rack
        off += 4
        (hl,) = struct.unpack_from(">h", r, off)
        off += 2 + hl + 4
        (rl,) = struct.unpack_from(">h", r, off)
        off += 2 + max(rl, 0)
    off += 4 + 4  # controller id, topic count
    (code,) = struct.unpack_from(">h", r, off)
    c.close()
    if code != 29:
        raise RuntimeError(f"alice's Metadata for load: error {code}, expected 29")
    c = KafkaConn(port)
    if c.login("alice", "not-her-password") != 58:
        raise RuntimeError("a wrong password was not refused")
    c.close()
    c = KafkaConn(port)
    if c.login("admin", SASL_USERS["admin"]) != 0:
        raise RuntimeError("admin cannot log in")
    time.sleep(1.2)
    try:
        c.request(3, 1, struct.pack(">i", 0))
        raise RuntimeError("a request after the session ended was answered")
    except (EOFError, OSError):
        pass
    c.close()


def commit_expiring_offset(cluster, group, topic, partition, offset):
    """OffsetCommit v2 of a standalone group with retention_time_ms 1: the coordinator
    expires it at its next offsets.retention.check.interval.ms."""
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        r = kafka_request(cluster.a.base_port, 10, 0, s16(group))  # FindCoordinator v0
        (code, node) = struct.unpack_from(">hi", r, 0)
        if code == 0:
            (hl,) = struct.unpack_from(">h", r, 6)
            (port,) = struct.unpack_from(">i", r, 8 + hl)
            body = (s16(group) + struct.pack(">i", -1) + s16("") + struct.pack(">q", 1)
                    + struct.pack(">i", 1) + s16(topic) + struct.pack(">i", 1)
                    + struct.pack(">iq", partition, offset) + s16(""))
            r = kafka_request(port, 8, 2, body)
            # [topic, [partition, error_code]]
            (tl,) = struct.unpack_from(">h", r, 4)
            (code,) = struct.unpack_from(">h", r, 4 + 2 + tl + 4 + 4)
            if code == 0:
                return
        last = code
        time.sleep(0.5)
    raise RuntimeError(f"OffsetCommit for {group}: error code {last}")


# -------------------------------------------------------------------------- load

class Load:
    """A keyed acks=all producer and a consumer group (kcat), running until stopped."""

    def __init__(self, a, cluster):
        self.a, self.cluster = a, cluster
        self.procs = []
        self.stop = threading.Event()
        self.sent = 0

    def start(self):
        b = self.cluster.bootstrap
        prod = subprocess.Popen(
            [self.a.kcat, "-P", "-b", b, "-t", "load", "-K", ":", "-X", "acks=all",
             "-X", "linger.ms=5", "-X", "enable.idempotence=true"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.a.dir, "producer.log"), "w"), text=True)
        self.procs.append(prod)
        cons = subprocess.Popen(
            [self.a.kcat, "-b", b, "-G", "weir-monitoring", "-q",
             "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=500", "load"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.a.dir, "consumer.log"), "w"))
        self.procs.append(cons)

        def feed():
            i = 0
            while not self.stop.is_set():
                try:
                    for _ in range(20):
                        prod.stdin.write(f"key-{i % 97}:value {i} {'x' * 200}\n")
                        i += 1
                    prod.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return
                self.sent = i
                time.sleep(0.1)

        threading.Thread(target=feed, daemon=True).start()

    def one_shot(self, topic, payload, *extra):
        r = subprocess.run([self.a.kcat, "-P", "-b", self.cluster.bootstrap, "-t", topic,
                            *extra], input=payload, capture_output=True, text=True,
                           timeout=30)
        return r

    def close(self):
        self.stop.set()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


# ----------------------------------------------------------------------- checks

def metrics_in(expr):
    names = set()
    for m in re.finditer(r"(?<![\w:])((?:weir|process)_\w+)", expr):
        names.add(re.sub(r"_(bucket|count|sum)$", "", m.group(1)))
    return names


def why_empty(prom, expr):
    """The metrics `expr` reads that have no series at all (the likely reason)."""
    return sorted(n for n in metrics_in(expr)
                  if not prom.query(f'count({{__name__=~"{n}(_bucket|_count|_sum)?"}})'))


def empty_result(prom, checks, where, expr, extra=""):
    """Records an empty answer: a known gap (EXPECTED_MISSING) or a failure."""
    absent = why_empty(prom, expr)
    if absent and all(n in EXPECTED_MISSING for n in absent):
        checks.known.append(f"{where}: {', '.join(absent)} not exported "
                            f"({'; '.join(EXPECTED_MISSING[n] for n in absent)})")
        print(f"KNOWN {where}: {', '.join(absent)} not exported", flush=True)
        return
    because = f"; no series at all for {', '.join(absent)}" if absent else ""
    checks.fail(where, f"`{expr}` returns nothing{extra}{because}")


def check_expected_missing(prom, checks):
    for name in EXPECTED_MISSING:
        if prom.query(f'count({{__name__=~"{name}(_bucket|_count|_sum)?"}})'):
            checks.fail(f"EXPECTED_MISSING {name}", "is exported now: remove it from "
                        "EXPECTED_MISSING in scripts/test_monitoring.py")
        else:
            checks.ok()


def check_health(cluster, checks):
    """/health and /ready answer 200 on every node. Before /ready existed, the exporter
    answered every path but /health with the metrics page: then /ready is skipped."""
    skipped = False
    for node in (1, 2, 3):
        bogus = http_get(cluster.metrics_url(node, "/no-such-path"))
        for path in ("/health", "/ready"):
            status, body = http_get(cluster.metrics_url(node, path))
            if bogus[0] == 200 and "# TYPE" in body and "# TYPE" in bogus[1]:
                skipped = True
                continue
            if status == 200:
                checks.ok()
            else:
                checks.fail(f"node {node} {path}", f"HTTP {status}: {body[:200]}")
    if skipped:
        checks.notes.append("SKIP /ready: the metrics port answers it (and every unknown "
                            "path) with the metrics page: not implemented yet")
    log("/health and /ready: 200 on every node" + (" (/ready: not implemented, skipped)"
                                                    if skipped else ""))


def alert_rules(prom):
    rules = []
    for g in prom.api("rules")["groups"]:
        for r in g["rules"]:
            if r["type"] == "alerting":
                rules.append(r)
    return rules


def describe(result, limit=3):
    out = []
    for s in result[:limit]:
        labels = ",".join(f"{k}={v}" for k, v in s["metric"].items() if k != "__name__")
        out.append(f"{{{labels}}} {s['value'][1]}")
    return "; ".join(out) + (f" (+{len(result) - limit})" if len(result) > limit else "")


def wait_for(fn, seconds, step=1.0):
    deadline = time.monotonic() + seconds
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def check_healthy_alerts(prom, cluster, checks):
    rules = alert_rules(prom)
    names = [r["name"] for r in rules]
    expected = re.findall(r"^\s*- alert:\s*(\S+)", open(ALERTS).read(), re.M)
    if sorted(names) != sorted(expected):
        checks.fail("rules loaded", f"Prometheus has {sorted(names)}, alerts.yml {expected}")
    st = os.statvfs(cluster.dir)
    disk_low = st.f_bavail / st.f_blocks < 0.3
    for r in rules:
        name, expr = r["name"], r["query"]
        if r.get("health") != "ok":
            checks.fail(f"{name}: evaluation", r.get("lastError") or r.get("health"))
        else:
            checks.ok()
        result = prom.query(expr)
        checks.counted("alert expressions (healthy: empty)")
        if result and disk_low and name.startswith("WeirDisk"):
            checks.notes.append(f"{name} returns series, but this disk is over 70% full: "
                                "not a failure")
        elif result:
            checks.fail(f"{name}: quiet while healthy", f"returns {describe(result)}")
        else:
            checks.ok()
        for sig in signals(expr):
            res = prom.query(sig)
            checks.counted("alert signals (healthy: series)")
            if res:
                checks.ok()
            else:
                empty_result(prom, checks, f"{name}: signal", sig)
    log(f"healthy: {len(rules)} alert rules evaluate, none returns series, their signals do")
    return {r["name"]: r["query"] for r in rules}


def check_failure_alerts(prom, cluster, exprs, checks):
    log("killing node 3")
    cluster.run("kill", "3")
    for name in FAILURE_ALERTS:
        if name not in exprs:
            checks.fail(name, "no such rule")
            continue
        result = wait_for(lambda: prom.query(exprs[name]), 45)
        checks.counted("alert expressions (node 3 down: series)")
        if not result:
            checks.fail(f"{name}: fires with node 3 down", "its expression returned nothing "
                        "within 45 s")
            continue
        if name == "WeirBrokerDown" and not any(
                s["metric"].get("instance") == cluster.instance(3) for s in result):
            checks.fail(f"{name}: fires with node 3 down", f"not for node 3: {describe(result)}")
            continue
        checks.ok()
        log(f"{name} fires: {describe(result)}")
    log("restarting node 3")
    cluster.run("start-node", "3")


def dashboard_queries():
    """(where, expr) of every panel target and template variable query."""
    out = []
    for f in sorted(os.listdir(DASHBOARDS)):
        if not f.endswith(".json"):
            continue
        d = json.load(open(os.path.join(DASHBOARDS, f)))
        values = dict(BUILTINS)
        for v in d["templating"]["list"]:
            if v["type"] == "datasource":
                continue
            # `.+`, not Grafana's `.*` for All: a misspelt label matches nothing.
            values[v["name"]] = JOB if v["name"] == "job" else ".+"
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip(), re.S)
            if not m:
                raise RuntimeError(f"{f}: variable {v['name']}: cannot read {q}")
            # label_values(selector, label) lists the label's values of the series.
            out.append((f"{f}: variable {v['name']}", m.group(1), m.group(2), values.copy()))

        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))

        for p in panels(d["panels"]):
            for t in p.get("targets", []):
                out.append((f"{f}: {p['title']} [{t['refId']}]", t["expr"], None, values))
    return out


def substitute(expr, values):
    def rep(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", rep, expr)


def check_dashboards(prom, checks, patience):
    queries = dashboard_queries()
    pending = []
    nan_only = []
    for where, expr, label, values in queries:
        try:
            q = substitute(expr, values)
        except KeyError as e:
            checks.fail(where, f"unknown variable ${e.args[0]}")
            continue
        pending.append((where, q, label))
    checks.counted("dashboard queries", len(pending))
    deadline = time.monotonic() + patience
    while True:
        still = []
        for where, q, label in pending:
            try:
                res = prom.query(q)
            except Exception as e:  # a query Prometheus rejects fails at once
                checks.fail(where, f"`{q}`: {e}")
                continue
            if label:
                res = [s for s in res if s["metric"].get(label)]
            if res:
                checks.ok()
                if all(math.isnan(float(s["value"][1])) for s in res):
                    nan_only.append(where)
            elif any(n in EXPECTED_MISSING for n in why_empty(prom, q)):
                empty_result(prom, checks, where, q)  # no point waiting for these
            else:
                still.append((where, q, label))
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(2)
    for where, q, label in pending:
        empty_result(prom, checks, where, q, f" with label {label}" if label else "")
    if nan_only:
        checks.notes.append(f"{len(nan_only)} dashboard queries answered NaN only (no recent "
                            f"observations): {'; '.join(nan_only)}")
    log(f"dashboards: {len(queries)} queries")


# ------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weir", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--kcat", default="kcat")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--metrics-base", type=int, required=True)
    ap.add_argument("--prometheus-port", type=int, required=True)
    ap.add_argument("--skip-failure", action="store_true",
                    help="skip the node-3-killed phase")
    a = ap.parse_args()

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    checks = Checks()
    cluster = Cluster(a)
    prom_proc = None
    load = None
    try:
        log("starting a 3-node cluster")
        cluster.run("start", "3", "--base-port", str(a.base_port))
        targets = [f"127.0.0.1:{a.metrics_base + i}" for i in range(3)]
        cfg = os.path.join(a.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {json.dumps(ALERTS)}\n"
                    f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        prom_proc = subprocess.Popen(
            [a.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={a.dir}/prometheus",
             f"--web.listen-address=127.0.0.1:{a.prometheus_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(a.dir, "prometheus.log"), "w"))
        with open(os.path.join(a.dir, "prometheus.pid"), "w") as f:
            f.write(str(prom_proc.pid))
        prom = Prom(a.prometheus_port)

        def ready():
            if prom_proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {a.dir}/prometheus.log")
            try:
                return http_get(f"{prom.base}/-/ready")[0] == 200
            except OSError:
                return False
        if not wait_for(ready, 30, 0.3):
            raise RuntimeError("prometheus not ready after 30 s")
        log(f"prometheus on 127.0.0.1:{a.prometheus_port}, scraping {', '.join(targets)}")

        check_health(cluster, checks)

        # load: small segments and a size retention, so segments roll and retention
        # deletes some while the check runs; solo: one replica, on node 3 (offline once
        # node 3 is fenced); compacted: tiny segments the cleaner compacts, stored as zstd
        # (compression.type) though kcat sends them uncompressed.
        create_topic(cluster, "load", 3, 3, configs={
            "segment.bytes": "32768", "retention.bytes": "131072"})
        create_topic(cluster, "solo", assignment={0: [3]})
        create_topic(cluster, "compacted", 1, 3, configs={
            "cleanup.policy": "compact", "segment.bytes": "1024",
            "min.cleanable.dirty.ratio": "0.01", "compression.type": "zstd"})
        load = Load(a, cluster)
        load.start()
        r = load.one_shot("compacted", "".join(f"k{i % 5}:v{i}\n" for i in range(300)),
                          "-K", ":", "-X", "acks=all", "-X", "batch.num.messages=5")
        if r.returncode != 0:
            raise RuntimeError(f"kcat produce to compacted: {r.stderr.strip()}")
        r = load.one_shot("solo", "a record on node 3\n", "-X", "acks=1")
        if r.returncode != 0:
            raise RuntimeError(f"kcat produce to solo: {r.stderr.strip()}")
        # Larger than message.max.bytes: the broker answers MESSAGE_TOO_LARGE.
        r = load.one_shot("load", "y" * 2_000_000 + "\n", "-X", "message.max.bytes=4000000",
                          "-X", "acks=all", "-X", "message.send.max.retries=0")
        log(f"load running (too-large produce: kcat exit {r.returncode})")
        # Not TLS: node 1's CONTROLLER listener counts a failed handshake.
        with socket.create_connection(("127.0.0.1", a.base_port + 100), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                sock.recv(100)
            except OSError:
                pass
        commit_expiring_offset(cluster, "weir-monitoring-expiring", "solo", 0, 1)
        sasl_traffic(cluster)

        def scraped():
            res = prom.query(f'sum(up{{job="{JOB}"}})')
            lag = prom.query("weir_group_lag_records")
            rates = prom.query(f"rate(weir_topic_records_in_total[{BUILTINS['__rate_interval']}])"
                               " > 0")
            return res and float(res[0]["value"][1]) == 3 and lag and rates
        if not wait_for(scraped, 60):
            log("warning: after 60 s not every node is up, or no lag or records-in rate yet")
        time.sleep(5)  # a few more scrapes: rate windows fill, groups settle
        log(f"{load.sent} records produced")

        targets_up = [t for t in prom.api("targets")["activeTargets"] if t["health"] == "up"]
        if len(targets_up) == 3:
            checks.ok()
        else:
            checks.fail("targets", f"{len(targets_up)} of 3 targets up")

        exprs = check_healthy_alerts(prom, cluster, checks)
        if a.skip_failure:
            checks.notes.append("failure phase skipped (--skip-failure)")
        else:
            check_failure_alerts(prom, cluster, exprs, checks)
        check_dashboards(prom, checks, patience=30)
        check_expected_missing(prom, checks)
    except KeyboardInterrupt as e:
        checks.fail("run", f"interrupted ({e})")
    except Exception as e:
        checks.fail("run", f"{type(e).__name__}: {e}")
    finally:
        if load:
            load.close()
        if prom_proc and prom_proc.poll() is None:
            prom_proc.terminate()
            try:
                prom_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom_proc.kill()
        try:
            cluster.run("stop", timeout=40)
        except Exception as e:
            print(f"cluster stop: {e}", flush=True)
    for note in checks.notes:
        print(f"NOTE {note}")
    for k in checks.known:
        print(f"KNOWN GAP {k}")
    total = sum(checks.queries.values())
    detail = ", ".join(f"{n} {kind}" for kind, n in checks.queries.items())
    print(f"{total} queries checked ({detail})")
    print(f"{checks.passed} checks passed, {len(checks.failures)} failed, "
          f"{len(checks.known)} known gaps, in {time.monotonic() - T0:.0f} s", flush=True)
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
