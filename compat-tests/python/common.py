"""Shared helpers of the Python client suites: scenario selection, result lines, broker
control through $WEIR_CTL, unique topic names, bounded waits and assertions.

A suite registers scenarios with @scenario("name"); run_all() runs the selected ones in
the runner's order and prints `RESULT <client> <scenario> PASS|FAIL|NA <detail>`.
A scenario passes by returning, is n/a by raising NA(reason), and fails on any
other exception (the exception text becomes the detail)."""
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid

BOOTSTRAP = os.environ.get("WEIR_BOOTSTRAP", "127.0.0.1:9092")
# Every broker's host:port (compat-tests/run --cluster N lists all N), sorted.
BROKER_ADDRS = sorted(BOOTSTRAP.split(","))
# Replication factor the suites create topics with: the cluster run's
# default.replication.factor (min(N, 3)); 1 on a single broker.
RF = min(len(BROKER_ADDRS), 3)
# Producer settings for records a scenario expects replicated when it is acknowledged.
# acks=1 (the kafka-python and aiokafka default) answers once the leader has the record;
# on one broker that also moves the high watermark. On a cluster only acks=all waits for
# the ISR, so that (as in Kafka) the record is below the high watermark (DeleteRecords
# past it is OFFSET_OUT_OF_RANGE) and outlives its leader (in a rolling restart a follower
# still in the ISR but not caught up may become leader and truncate acks=1 records away).
REPLICATED = {"acks": "all"} if RF > 1 else {}
# TLS, when compat-tests/run --security ssl|mtls starts the broker with an SSL listener:
# WEIR_SSL_CA (the CA that signed the broker's certificate) and, for mutual TLS,
# WEIR_SSL_CERT / WEIR_SSL_KEY (the client's certificate and key, PEM).
SSL_CA = os.environ.get("WEIR_SSL_CA")
SSL_CERT = os.environ.get("WEIR_SSL_CERT")
SSL_KEY = os.environ.get("WEIR_SSL_KEY")
# Each client's own spelling of those settings, merged into every client's config.
CK_SECURITY = {}  # confluent-kafka (librdkafka names)
KP_SECURITY = {}  # kafka-python
if SSL_CA:
    CK_SECURITY = {"security.protocol": "SSL", "ssl.ca.location": SSL_CA}
    KP_SECURITY = {"security_protocol": "SSL", "ssl_cafile": SSL_CA, "ssl_check_hostname": True}
    if SSL_CERT:
        CK_SECURITY.update({"ssl.certificate.location": SSL_CERT, "ssl.key.location": SSL_KEY})
        KP_SECURITY.update({"ssl_certfile": SSL_CERT, "ssl_keyfile": SSL_KEY})
# SASL (compat-tests/run --security sasl_plaintext|sasl_ssl): the mechanism, user and
# password every client authenticates with.
SASL_MECHANISM = os.environ.get("WEIR_SASL_MECHANISM")
SASL_USERNAME = os.environ.get("WEIR_SASL_USERNAME")
SASL_PASSWORD = os.environ.get("WEIR_SASL_PASSWORD")
SASL_PROTOCOL = ("SASL_SSL" if SSL_CA else "SASL_PLAINTEXT") if SASL_MECHANISM else None


# OAUTHBEARER: tokens come from the runner's identity provider (client-credentials grant,
# user and password as client id and secret).
OAUTH_TOKEN_URL = os.environ.get("WEIR_OAUTH_TOKEN_URL")


def fetch_token(password):
    """An access token for SASL_USERNAME with `password` as the client secret."""
    import base64
    import json
    import urllib.request
    basic = base64.b64encode(f"{SASL_USERNAME}:{password}".encode()).decode()
    req = urllib.request.Request(OAUTH_TOKEN_URL, data=b"grant_type=client_credentials",
                                 headers={"Authorization": f"Basic {basic}",
                                          "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["access_token"]


def ck_sasl(password):
    if SASL_MECHANISM == "OAUTHBEARER":
        # librdkafka's own OIDC login, as an application would configure it.
        return {"security.protocol": SASL_PROTOCOL, "sasl.mechanisms": SASL_MECHANISM,
                "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": SASL_USERNAME,
                "sasl.oauthbearer.client.secret": password,
                "sasl.oauthbearer.token.endpoint.url": OAUTH_TOKEN_URL}
    return {"security.protocol": SASL_PROTOCOL, "sasl.mechanisms": SASL_MECHANISM,
            "sasl.username": SASL_USERNAME, "sasl.password": password}


def kp_sasl(password, aio=False):
    """kafka-python's (or, with `aio`, aiokafka's) SASL settings."""
    if SASL_MECHANISM == "OAUTHBEARER":
        return {"security_protocol": SASL_PROTOCOL, "sasl_mechanism": SASL_MECHANISM,
                "sasl_oauth_token_provider": token_provider(password, aio)}
    return {"security_protocol": SASL_PROTOCOL, "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": SASL_USERNAME, "sasl_plain_password": password}


def token_provider(password, aio):
    """The client library's token-provider interface over fetch_token (a fresh token per
    authentication: the provider's tokens last an hour, longer than any suite)."""
    if aio:
        import asyncio
        from aiokafka.abc import AbstractTokenProvider as AioProvider

        class Provider(AioProvider):
            async def token(self):
                return await asyncio.get_running_loop().run_in_executor(None, fetch_token, password)
        return Provider()
    from kafka.net.sasl.oauth import AbstractTokenProvider as KpProvider

    class Provider(KpProvider):
        def token(self):
            return fetch_token(password)
    return Provider()


if SASL_MECHANISM:
    CK_SECURITY.update(ck_sasl(SASL_PASSWORD))
    KP_SECURITY.update(kp_sasl(SASL_PASSWORD))


def aio_security(password=None):
    """aiokafka's security settings: an SSLContext (made per client, as aiokafka expects)
    and the SASL ones (with `password` instead of the right one, if given)."""
    out = {}
    if SSL_CA:
        from aiokafka.helpers import create_ssl_context
        ctx = create_ssl_context(cafile=SSL_CA, certfile=SSL_CERT, keyfile=SSL_KEY)
        out = {"security_protocol": "SSL", "ssl_context": ctx}
    if SASL_MECHANISM:
        out.update(kp_sasl(password or SASL_PASSWORD, aio=True))
    return out


def need_sasl():
    """auth_refused only means something when the broker authenticates clients."""
    if not SASL_MECHANISM:
        raise NA("the listener does not authenticate clients (no SASL in this mode)")


WRONG_PASSWORD = "not-the-password"


class LoggedErrors(logging.Handler):
    """In a `with` block, the exceptions of type `cls` that a client library logs (as the
    arguments of its log records) on `logger`: kafka-python and aiokafka only log why a
    bootstrap address failed while they retry."""

    def __init__(self, logger, cls):
        super().__init__()
        self.logger, self.cls, self.errors = logger, cls, []

    def emit(self, record):
        self.errors += [a for a in record.args or () if isinstance(a, self.cls)]

    def __enter__(self):
        logging.getLogger(self.logger).addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger(self.logger).removeHandler(self)


CTL = os.environ.get("WEIR_CTL")
SELECTED = [s for s in os.environ.get("WEIR_SCENARIOS", "").split(",") if s]

ORDER = [
    "metadata", "auth_refused", "codec_none", "codec_gzip", "codec_snappy", "codec_lz4", "codec_zstd",
    "keys_headers", "timestamp_create", "timestamp_log_append", "large_message",
    "list_offsets", "idempotent", "admin_create_topic", "admin_describe_configs",
    "admin_alter_configs", "admin_create_partitions", "admin_delete_topic",
    "delete_records",
    "group_split", "group_rebalance", "group_session_timeout", "group_cooperative",
    "group_static", "group_commit_restart", "group_consumer_protocol", "group_admin",
    "compacted_topic", "transactions", "txn_offsets",
    "restart", "kill9",
]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# A topic's compression.type for each producer codec (Kafka spells "none" uncompressed).
BROKER_CODEC = {"none": "uncompressed", "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}
ONE_MIB = 1024 * 1024
# An old CreateTime (2020-09-13T12:26:40.123Z), far from "now", so it can't be confused
# with a broker timestamp.
OLD_TS = 1600000000123

_registry = {}


class NA(Exception):
    """The client cannot do this scenario; the message says why."""


class Fail(AssertionError):
    pass


def scenario(name):
    assert name in ORDER, name

    def deco(fn):
        _registry[name] = fn
        return fn
    return deco


def topic_name(tag):
    return f"compat-{tag}-{uuid.uuid4().hex[:10]}"


def group_name(tag):
    return f"compat-group-{tag}-{uuid.uuid4().hex[:10]}"


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(actual, expected, what):
    if actual != expected:
        a, e = repr(actual), repr(expected)
        raise Fail(f"{what}: expected {e[:200]}, got {a[:200]}")


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})"[:300])


def ctl(cmd, *args, timeout=90):
    """Runs `$WEIR_CTL cmd [args]` (start, stop, restart, `kill9 [topic]`: on a cluster the
    leader of the topic's partition 0 is killed); fails if it fails."""
    if not CTL:
        raise NA("WEIR_CTL not set (run through compat-tests/run)")
    p = subprocess.run([CTL, cmd, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise Fail(f"$WEIR_CTL {cmd} failed: {(p.stdout + p.stderr)[-300:]}")


def check_split(assignments, partitions, what):
    """Fails unless the members' partition sets are disjoint and cover range(partitions)."""
    seen = []
    for a in assignments:
        seen.extend(a)
    check(len(seen) == len(set(seen)), f"{what}: overlapping assignments {[sorted(a) for a in assignments]}")
    eq(sorted(seen), list(range(partitions)), f"{what}: partitions covered")


def assigned(members, sizes, partitions, what):
    """The members' partitions once member i owns sizes[i] of them, together all of
    range(partitions), disjoint; None before. Fails at once if a member reports an error.
    Members have `errors` (a list) and `owned()` (their partitions now)."""
    for m in members:
        if m.errors:
            raise Fail(f"member error while waiting for {what}: {m.errors[:2]}")
    owned = [m.owned() for m in members]
    if [len(o) for o in owned] != sizes:
        return None
    check_split(owned, partitions, what)
    return owned


def wait_assigned(members, sizes, partitions, timeout=30, what="assignment"):
    """Waits until `assigned` holds (see there); returns the monotonic time."""
    try:
        wait_for(lambda: assigned(members, sizes, partitions, what), timeout, f"{what} {sizes}")
    except Fail as e:
        raise Fail(f"{e}; members own {[sorted(m.owned()) for m in members]}") from None
    return time.monotonic()


def spread(n, partitions, tag="m"):
    """(key, value, partition) of n keyed messages, message i to partition i % partitions,
    as the group scenarios produce them."""
    return [(f"{tag}-k{i}".encode(), f"{tag}-{i}".encode(), i % partitions) for i in range(n)]


class ThreadedMember:
    """One group consumer polled by its own thread, for the clients with blocking APIs
    (confluent-kafka, kafka-python). A subclass's _run(), on that thread, creates its
    client, subscribes (then sets subscribed_at), polls until stop_ev is set, and closes;
    its rebalance callbacks keep `assigned` and `events` and its polls `msgs`
    ((partition, offset, key, value)), all under `lock`; failures go to `errors`."""

    def __init__(self, group, topic, bound=30):
        self.group, self.topic, self.bound = group, topic, bound
        self.lock = threading.Lock()
        self.assigned = set()
        self.events = []  # ("assign" | "revoke" | "lost", [partitions]) in callback order
        self.msgs = []
        self.errors = []
        self.stop_ev = threading.Event()
        self.subscribed_at = None
        self.thread = None

    def start(self):
        """Starts the thread; returns the monotonic time at which it subscribed."""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.subscribed_at or self.errors, self.bound, "subscribe")
        if self.errors:
            raise Fail(f"member failed to start: {self.errors[0]}")
        return self.subscribed_at

    def _run(self):
        raise NotImplementedError

    def owned(self):
        with self.lock:
            return frozenset(self.assigned)

    def values(self):
        with self.lock:
            return [m[3] for m in self.msgs]

    def close(self):
        if self.thread and self.thread.is_alive():
            self.stop_ev.set()
            self.thread.join(self.bound)
            check(not self.thread.is_alive(), "member did not close within the bound")


def close_all(members):
    """Closes every member, going on past failures (used on the way out of a scenario)."""
    for m in members:
        try:
            m.close()
        except Exception:
            pass


class Child:
    """A helper process (`python -c code args...`, this folder on its path) whose stdout
    lines are collected by a thread; kill() SIGKILLs it (no clean shutdown)."""

    def __init__(self, code, *args):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)),
                   PYTHONUNBUFFERED="1")
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def last(self, prefix):
        """The latest line starting with prefix (without the prefix), or None."""
        for line in reversed(self.lines):
            if line.startswith(prefix):
                return line[len(prefix):]
        return None

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def output(self):
        return " | ".join(self.lines[-5:])


def payload(i, size=0):
    base = f"value-{i}-".encode()
    return base + b"x" * max(0, size - len(base))


# Scenarios retried once, the first failure kept visible in the detail as [FLAKY: ...].
# kafka-python's first group member sometimes has no partitions after 30 s (seen in
# group_split, group_session_timeout and group_rebalance; about 1 run in 10-20 of
# group_rebalance alone). Caught with a capture of the loopback traffic (2026-11-24,
# kafka-python 3.0.12): the member, leader of the new generation, sent its SyncGroup and
# the broker answered it 1.5 ms later with the assignment, as it answered the two other
# members; after that the member sent nothing more on its coordinator connection (no
# OffsetFetch, no Heartbeat) until it closed 30 s later, and the broker expired it after
# its 10 s session. The client lost the response it had received. Each attempt uses fresh
# topic and group names. Seen again (2026-12-07, over mutual TLS, 8 of 238 runs of
# group_cooperative and group_static; the capture above was over plain TCP) in the first
# member of group_cooperative and group_static, with the client's threads dumped at the
# timeout: its IO thread idle in select() and the consumer thread either blocked in
# ensure_coordinator_ready (no FindCoordinator ever sent) or polling in a loop while its
# coordinator logged the group as joined (need_rejoin False, thousands of times a second)
# and its rebalance listener was never called; the broker log shows every request of the
# member answered within 2 ms and nothing outstanding.
RETRY_ONCE = {
    ("kafka-python", "group_session_timeout"),
    ("kafka-python", "group_split"),
    ("kafka-python", "group_rebalance"),
    ("kafka-python", "group_cooperative"),
    ("kafka-python", "group_static"),
}


def _attempt(n):
    try:
        return "PASS", _registry[n]() or ""
    except NA as e:
        return "NA", str(e)
    except Exception as e:  # reported as FAIL with the reason, never swallowed
        traceback.print_exc(file=sys.stdout)
        return "FAIL", f"{type(e).__name__}: {e}".replace("\n", " ")


def run_all(client):
    names = [n for n in ORDER if n in _registry and (not SELECTED or n in SELECTED)]
    # Scenarios the suite does not implement at all are reported so nothing is silent.
    for n in ORDER:
        if n not in _registry and (not SELECTED or n in SELECTED):
            print(f"RESULT {client} {n} NA not implemented for this client", flush=True)
    failed = 0
    for n in names:
        t0 = time.monotonic()
        status, detail = _attempt(n)
        if status == "FAIL" and (client, n) in RETRY_ONCE:
            first = detail
            status, detail = _attempt(n)
            if status == "PASS":
                detail = f"{detail} [FLAKY: failed once before passing: {first}]"
        if status == "FAIL":
            failed += 1
        print(f"RESULT {client} {n} {status} {detail} ({time.monotonic() - t0:.1f}s)", flush=True)
    return 1 if failed else 0
