"""kafka-python (pure Python client, 3.x) against Weir: every scenario of the matrix.

Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set; prints RESULT lines."""
import hashlib
import json
import os
import threading
import time

import kafka.errors as Errors
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.admin import AlterConfigOp, ConfigResource, KafkaAdminClient

from common import (BOOTSTRAP, KP_SECURITY, WRONG_PASSWORD, LoggedErrors, kp_sasl, need_sasl, BROKER_ADDRS, BROKER_CODEC, REPLICATED, RF, CODECS, NA, OLD_TS, ONE_MIB, Child, Fail, check, check_split, ctl, eq,
                    ThreadedMember, close_all, group_name, spread, wait_assigned, payload, run_all, scenario,
                    topic_name, wait_for)

CLIENT = "kafka-python"
T = 30
TMS = T * 1000
CREATE_TIME, LOG_APPEND_TIME = 0, 1  # ConsumerRecord.timestamp_type

_admin = []


def admin():
    if not _admin:
        _admin.append(KafkaAdminClient(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, request_timeout_ms=TMS))
    return _admin[0]


def fresh_admin():
    """Drops the shared admin client (used after the broker restarted: a new client each time)."""
    while _admin:
        _admin.pop().close()


def producer(**extra):
    # REPLICATED: acks=all on a cluster, so an acknowledged record is below the high
    # watermark and survives leader changes, as it does on one broker with acks=1.
    conf = dict(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, linger_ms=5, request_timeout_ms=TMS, **REPLICATED)
    conf.update(extra)
    return KafkaProducer(**conf)


def consumer():
    return KafkaConsumer(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=None, enable_auto_commit=False,
                         max_partition_fetch_bytes=4 * ONE_MIB, fetch_max_bytes=8 * ONE_MIB,
                         request_timeout_ms=TMS)


def produce_all(p, topic, msgs, partition=0):
    """Sends msgs (dicts of send() kwargs) and waits for each; returns RecordMetadata list."""
    futs = [p.send(topic, partition=partition, **m) for m in msgs]
    p.flush(timeout=T)
    out = [f.get(timeout=T) for f in futs]  # raises the delivery error, if any
    p.close(timeout=T)
    return out


def consume(topic, partition, count, start=None):
    """Reads exactly `count` records of topic[partition] from `start` (default: beginning)."""
    c = consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        if start is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, start)
        out = []
        deadline = time.monotonic() + T
        while len(out) < count and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        eq(len(out), count, f"records consumed from {topic}[{partition}]")
        return out
    finally:
        c.close()


def watermarks(topic, partition=0):
    c = consumer()
    try:
        tp = TopicPartition(topic, partition)
        return c.beginning_offsets([tp], timeout_ms=TMS)[tp], c.end_offsets([tp], timeout_ms=TMS)[tp]
    finally:
        c.close()


def create_topic(name, partitions=1, config=None):
    admin().create_topics({name: {"num_partitions": partitions, "replication_factor": RF,
                                  "configs": config or {}}}, timeout_ms=TMS)


def describe(name, kind="topic"):
    res = admin().describe_configs([ConfigResource(kind, name)], config_filter="all")
    return res[kind][name]


@scenario("auth_refused")
def auth_refused():
    need_sasl()
    # kafka-python keeps retrying the bootstrap; the refusal shows in what it logs.
    with LoggedErrors("kafka", Errors.SaslAuthenticationFailedError) as seen:
        try:
            KafkaAdminClient(bootstrap_servers=BOOTSTRAP, **{**KP_SECURITY, **kp_sasl(WRONG_PASSWORD)},
                             request_timeout_ms=5000, bootstrap_timeout_ms=5000)
            raise Fail("the admin client bootstrapped with a wrong password")
        except Errors.KafkaTimeoutError:
            pass
    check(seen.errors, "no SaslAuthenticationFailedError with a wrong password")
    check(admin().list_topics() is not None, "the right password no longer works")
    return str(seen.errors[0])[:160]


@scenario("metadata")
def metadata():
    t = topic_name("meta")
    md = produce_all(producer(), t, [{"value": b"hello"}])  # produce to an unknown topic auto-creates it
    eq(md[0].offset, 0, "first offset")
    c = consumer()
    try:
        parts = wait_for(lambda: c.partitions_for_topic(t), T, f"partitions of auto-created topic {t}")
    finally:
        c.close()
    eq(sorted(parts), [0], "partitions of auto-created topic")
    desc = admin().describe_topics([t])[0]  # Metadata request
    eq([(p["partition_index"], p["error_code"]) for p in desc["partitions"]], [(0, 0)], "partition metadata")
    brokers = admin()._manager.cluster.brokers()  # the client's view of Metadata's broker list
    eq(sorted(f"{b.host}:{b.port}" for b in brokers), BROKER_ADDRS, "advertised broker addresses")
    p0 = desc["partitions"][0]
    check(p0["leader_id"] in [getattr(b, "node_id", None) for b in brokers], f"leader {p0['leader_id']} is no broker")
    eq(len(p0["replica_nodes"]), RF, "replicas of auto-created topic (default.replication.factor)")


def codec_scenario(codec):
    t = topic_name(f"codec-{codec}")
    n = 200
    msgs = [{"key": f"key-{i}".encode(), "value": payload(i, 100)} for i in range(n)]
    kw = {} if codec == "none" else {"compression_type": codec}
    md = produce_all(producer(linger_ms=50, **kw), t, msgs)
    eq([m.offset for m in md], list(range(n)), "delivered offsets")
    got = consume(t, 0, n)
    eq([r.offset for r in got], list(range(n)), "consumed offsets")
    eq([r.key for r in got], [m["key"] for m in msgs], "keys")
    eq([r.value for r in got], [m["value"] for m in msgs], "values")
    # The broker compresses: a topic whose compression.type names the codec stores the
    # uncompressed batches of this producer in it, and the consumer reads them back.
    bt = topic_name(f"codec-broker-{codec}")
    create_topic(bt, config={"compression.type": BROKER_CODEC[codec]})
    produce_all(producer(linger_ms=50), bt, msgs)
    got = consume(bt, 0, n)
    eq([(r.offset, r.key, r.value) for r in got],
       [(i, m["key"], m["value"]) for i, m in enumerate(msgs)], "broker-compressed records")
    return f"{n} messages; {n} more compressed by the broker ({BROKER_CODEC[codec]})"


for _codec in CODECS:
    scenario(f"codec_{_codec}")(lambda c=_codec: codec_scenario(c))


@scenario("keys_headers")
def keys_headers():
    t = topic_name("keys")
    msgs = [
        {"key": b"k1", "value": b"v1", "headers": [("h1", b"a"), ("h2", b""), ("h1", b"dup")]},
        {"key": None, "value": b"v2"},
        # kafka-python 3 refuses a None header value ("must be (str, bytes) tuples")
        {"key": b"k3", "value": None, "headers": [("h3", b"x")]},
        {"key": b"", "value": b""},
    ]
    produce_all(producer(), t, msgs)
    got = consume(t, 0, len(msgs))
    eq([r.key for r in got], [b"k1", None, b"k3", b""], "keys")
    eq([r.value for r in got], [b"v1", b"v2", None, b""], "values")
    eq(got[0].headers, [("h1", b"a"), ("h2", b""), ("h1", b"dup")], "headers")
    eq(got[1].headers, [], "no headers")
    eq(got[2].headers, [("h3", b"x")], "headers of a null-value record")
    return "null header values: n/a (kafka-python refuses them)"


@scenario("timestamp_create")
def timestamp_create():
    t = topic_name("ts-create")
    md = produce_all(producer(), t, [{"value": b"a", "timestamp_ms": OLD_TS},
                                     {"value": b"b", "timestamp_ms": OLD_TS + 1}])
    eq(md[0].timestamp, OLD_TS, "RecordMetadata timestamp")
    got = consume(t, 0, 2)
    eq([(r.timestamp_type, r.timestamp) for r in got],
       [(CREATE_TIME, OLD_TS), (CREATE_TIME, OLD_TS + 1)], "consumed timestamps")


@scenario("timestamp_log_append")
def timestamp_log_append():
    t = topic_name("ts-append")
    create_topic(t, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    md = produce_all(producer(), t, [{"value": b"a", "timestamp_ms": OLD_TS}])
    after = int(time.time() * 1000)
    got = consume(t, 0, 1)
    eq(got[0].timestamp_type, LOG_APPEND_TIME, "timestamp type")
    check(before - 1000 <= got[0].timestamp <= after + 1000,
          f"LogAppendTime {got[0].timestamp} not within [{before}, {after}]")
    eq(md[0].timestamp, got[0].timestamp, "RecordMetadata timestamp (log_append_time) vs consumed")


@scenario("large_message")
def large_message():
    t = topic_name("large")
    create_topic(t, config={"max.message.bytes": str(4 * ONE_MIB)})
    big = os.urandom(ONE_MIB)
    md = produce_all(producer(max_request_size=4 * ONE_MIB), t, [{"key": b"big", "value": big},
                                                                 {"value": b"after"}])
    eq([m.offset for m in md], [0, 1], "offsets")
    got = consume(t, 0, 2)
    eq(hashlib.sha256(got[0].value).hexdigest(), hashlib.sha256(big).hexdigest(), "1 MiB value digest")
    eq(got[1].value, b"after", "message after the large one")


@scenario("list_offsets")
def list_offsets():
    t = topic_name("offsets")
    produce_all(producer(), t, [{"value": payload(i), "timestamp_ms": OLD_TS + 1000 * i} for i in range(5)])
    tp = TopicPartition(t, 0)
    c = consumer()
    try:
        def q(ts):
            r = c.offsets_for_times({tp: ts}, timeout_ms=TMS)[tp]
            return None if r is None else (r.offset, r.timestamp)
        eq(q(OLD_TS - 5000), (0, OLD_TS), "offset before first timestamp")
        eq(q(OLD_TS + 1500), (2, OLD_TS + 2000), "offset between messages 1 and 2")
        eq(q(OLD_TS + 4000), (4, OLD_TS + 4000), "offset for last timestamp")
        eq(q(OLD_TS + 9000), None, "offset after last timestamp (none)")
        eq(c.beginning_offsets([tp], timeout_ms=TMS)[tp], 0, "earliest")
        eq(c.end_offsets([tp], timeout_ms=TMS)[tp], 5, "latest")
    finally:
        c.close()


@scenario("idempotent")
def idempotent():
    t = topic_name("idem")
    n = 500
    md = produce_all(producer(enable_idempotence=True, acks="all", linger_ms=2, batch_size=2048), t,
                     [{"value": payload(i)} for i in range(n)])
    eq(sorted(m.offset for m in md), list(range(n)), "delivered offsets")
    got = consume(t, 0, n)
    eq([r.value for r in got], [payload(i) for i in range(n)], "log content (each once, in order)")
    eq(watermarks(t), (0, n), "watermarks (no duplicates)")


@scenario("admin_create_topic")
def admin_create_topic():
    t = topic_name("create")
    create_topic(t, partitions=3, config={"retention.ms": "123456789", "cleanup.policy": "compact"})
    check(t in admin().list_topics(), f"{t} not listed")
    desc = admin().describe_topics([t])[0]
    eq(sorted(p["partition_index"] for p in desc["partitions"]), [0, 1, 2], "partitions")
    cfg = describe(t)
    eq(cfg["retention.ms"]["value"], "123456789", "retention.ms")
    eq(cfg["cleanup.policy"]["value"], "compact", "cleanup.policy")
    try:
        create_topic(t)
        raise Fail("creating an existing topic succeeded")
    except Errors.TopicAlreadyExistsError:
        pass


@scenario("admin_describe_configs")
def admin_describe_configs():
    t = topic_name("describe")
    create_topic(t, config={"retention.ms": "86400000"})
    cfg = describe(t)
    eq((cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]),
       ("86400000", "DYNAMIC_TOPIC_CONFIG"), "override")
    eq((cfg["segment.bytes"]["value"], cfg["segment.bytes"]["config_source"]),
       ("1073741824", "DEFAULT_CONFIG"), "default segment.bytes")
    eq(cfg["message.timestamp.type"]["value"], "CreateTime", "default message.timestamp.type")
    broker_id = admin()._manager.cluster.brokers()[0].node_id
    bcfg = describe(str(broker_id), "broker")
    eq(bcfg["num.partitions"]["value"], "1", "broker num.partitions")
    eq(bcfg["log.dirs"]["config_source"], "STATIC_BROKER_CONFIG", "broker log.dirs source")
    return f"{len(cfg)} topic configs, {len(bcfg)} broker configs"


@scenario("admin_alter_configs")
def admin_alter_configs():
    t = topic_name("alter")
    create_topic(t)

    def alter(configs):
        res = admin().alter_configs([ConfigResource("topic", t, configs=configs)],
                                    incremental=True, raise_on_unknown=False)
        eq(res["topic"][t], "OK", "IncrementalAlterConfigs result")

    alter({"max.message.bytes": "1000", "retention.ms": "7654321"})
    cfg = describe(t)
    eq((cfg["max.message.bytes"]["value"], cfg["max.message.bytes"]["config_source"]),
       ("1000", "DYNAMIC_TOPIC_CONFIG"), "altered max.message.bytes")
    eq(cfg["retention.ms"]["value"], "7654321", "altered retention.ms")
    try:
        produce_all(producer(retries=0), t, [{"value": b"y" * 2000}])
        raise Fail("2000-byte record accepted despite max.message.bytes=1000")
    except Errors.MessageSizeTooLargeError:
        pass
    alter({"max.message.bytes": (AlterConfigOp.DELETE, None)})
    cfg = describe(t)
    eq(cfg["max.message.bytes"]["config_source"], "DEFAULT_CONFIG", "source after DELETE")
    eq(cfg["retention.ms"]["value"], "7654321", "untouched retention.ms")
    produce_all(producer(), t, [{"value": b"y" * 2000}])


@scenario("admin_create_partitions")
def admin_create_partitions():
    t = topic_name("parts")
    create_topic(t)
    admin().create_partitions({t: 3}, timeout_ms=TMS)
    wait_for(lambda: len(admin().describe_topics([t])[0]["partitions"]) == 3, T, "3 partitions in metadata")
    md = produce_all(producer(), t, [{"value": b"p2"}], partition=2)
    eq((md[0].partition, md[0].offset), (2, 0), "partition/offset in new partition")
    eq(consume(t, 2, 1)[0].value, b"p2", "value in new partition")


@scenario("admin_delete_topic")
def admin_delete_topic():
    t = topic_name("delete")
    create_topic(t)
    produce_all(producer(), t, [{"value": payload(i)} for i in range(3)])
    admin().delete_topics([t], timeout_ms=TMS)
    wait_for(lambda: t not in admin().list_topics(), T, "topic gone from metadata")
    create_topic(t)
    eq(watermarks(t), (0, 0), "watermarks of the re-created topic")


@scenario("delete_records")
def delete_records():
    t = topic_name("delrec")
    produce_all(producer(), t, [{"value": payload(i)} for i in range(10)])
    tp = TopicPartition(t, 0)
    res = admin().delete_records({tp: 4}, timeout_ms=TMS)
    r = res[tp]
    eq(r["low_watermark"] if isinstance(r, dict) else r.low_watermark, 4, "low watermark from DeleteRecords")
    eq(watermarks(t), (4, 10), "watermarks after DeleteRecords")
    eq([r.offset for r in consume(t, 0, 6)], list(range(4, 10)), "offsets readable")


# ---------------------------------------------------------------- consumer groups

HB_MS = 500  # heartbeat_interval_ms of group members: rebalances are noticed quickly


class _Listener(ConsumerRebalanceListener):
    """Keeps a Member's partition set: kafka-python hands full sets to EAGER listeners and
    increments to COOPERATIVE ones, so set union/difference is right for both."""

    def __init__(self, member):
        self.m = member

    def _event(self, kind, tps):
        ps = {tp.partition for tp in tps}
        with self.m.lock:
            if kind == "assign":
                self.m.assigned |= ps
            else:
                self.m.assigned -= ps
            self.m.events.append((kind, sorted(ps)))

    def on_partitions_revoked(self, revoked):
        self._event("revoke", revoked)

    def on_partitions_assigned(self, assigned):
        self._event("assign", assigned)

    def on_partitions_lost(self, lost):
        self._event("lost", lost)


class Member(ThreadedMember):
    """One group consumer polled by its own thread. Auto-commit is on, so kafka-python
    commits what poll() returned before every rebalance and on close (as the Java client)."""

    def __init__(self, group, topic, **extra):
        super().__init__(group, topic, bound=T)
        self.conf = dict(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=True, auto_commit_interval_ms=1000,
                         session_timeout_ms=10000, heartbeat_interval_ms=HB_MS)
        self.conf.update(extra)

    def _run(self):
        try:
            c = KafkaConsumer(**self.conf)
            c.subscribe([self.topic], listener=_Listener(self))
            self.subscribed_at = time.monotonic()
            while not self.stop_ev.is_set():
                for recs in c.poll(timeout_ms=100).values():
                    with self.lock:
                        self.msgs.extend((r.partition, r.offset, r.key, r.value) for r in recs)
            c.close()  # commits, revokes and leaves (a static member does not leave)
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")


def produce_spread(topic, n, partitions, tag="m"):
    """Produces n keyed messages, message i to partition i % partitions; returns the values."""
    p = producer()
    msgs = spread(n, partitions, tag)
    futs = [p.send(topic, key=k, value=v, partition=part) for k, v, part in msgs]
    p.flush(timeout=T)
    for f in futs:
        f.get(timeout=T)
    p.close(timeout=T)
    return [v for _, v, _ in msgs]


@scenario("group_split")
def group_split():
    t, g = topic_name("split"), group_name("split")
    create_topic(t, partitions=12)
    n = 1200
    values = produce_spread(t, n, 12)
    ms = [Member(g, t) for _ in range(3)]
    try:
        ms[0].start()
        ms[1].start()
        wait_assigned(ms[:2], [6, 6], 12, what="2 members")
        t0 = ms[2].start()
        t1 = wait_assigned(ms, [4, 4, 4], 12, what="3 members")
        wait_for(lambda: sum(len(m.values()) for m in ms) >= n, T, f"{n} messages consumed")
        time.sleep(1)
        got = [v for m in ms for v in m.values()]
        dups = len(got) - len(set(got))
        check(dups == 0, f"{dups} messages consumed twice")
        eq(sorted(got), sorted(values), "messages consumed by the group")
        wait_assigned(ms, [4, 4, 4], 12, what="final assignment")
        return f"3 members, rebalance {t1 - t0:.1f}s, {n} messages once each"
    finally:
        close_all(ms)


@scenario("group_rebalance")
def group_rebalance():
    t, g = topic_name("rebal"), group_name("rebal")
    create_topic(t, partitions=12)
    values = set(produce_spread(t, 600, 12, "pre"))
    ms = [Member(g, t) for _ in range(4)]
    produced, stop = [], threading.Event()

    def produce_loop():
        p = producer()
        i, futs = 0, []
        while not stop.is_set():
            v = f"during-{i}".encode()
            futs.append((v, p.send(t, key=v, value=v, partition=i % 12)))
            time.sleep(0.01)
            i += 1
        p.flush(timeout=T)
        for v, f in futs:
            f.get(timeout=T)
            produced.append(v)
        p.close(timeout=T)

    th = threading.Thread(target=produce_loop, daemon=True)
    try:
        for m in ms[:3]:
            m.start()
        wait_assigned(ms[:3], [4, 4, 4], 12, what="3 members")
        th.start()
        t0 = ms[3].start()
        t1 = wait_assigned(ms, [3, 3, 3, 3], 12, what="4 members")
        ms[1].close()
        t2 = time.monotonic()
        t3 = wait_assigned([ms[0], ms[2], ms[3]], [4, 4, 4], 12, what="after a member left")
        stop.set()
        th.join(T)
        check(produced, "nothing produced during the rebalances")
        values |= set(produced)
        got = lambda: {v for m in ms for v in m.values()}
        wait_for(lambda: values <= got(), T, f"all {len(values)} messages consumed")
        total = sum(len(m.values()) for m in ms)
        return (f"join rebalance {t1 - t0:.1f}s, leave rebalance {t3 - t2:.1f}s, {len(values)} messages, "
                f"{total - len(values)} redelivered")
    finally:
        stop.set()
        close_all(ms)


CHILD_MEMBER = r"""
import json, sys
from kafka import KafkaConsumer, ConsumerRebalanceListener
from common import KP_SECURITY
conf, topic = json.loads(sys.argv[1]), sys.argv[2]
# The security settings are made here: an OAUTHBEARER token provider is no JSON.
conf.update(KP_SECURITY)
owned = set()
def show():
    print("ASSIGNED " + ",".join(str(p) for p in sorted(owned)), flush=True)
class L(ConsumerRebalanceListener):
    def on_partitions_revoked(self, tps):
        owned.difference_update(tp.partition for tp in tps); show()
    def on_partitions_assigned(self, tps):
        owned.update(tp.partition for tp in tps); show()
c = KafkaConsumer(**conf)
c.subscribe([topic], listener=L())
while True:
    c.poll(timeout_ms=200)
"""


def child_owned(child):
    line = child.last("ASSIGNED ")
    return None if line is None else frozenset(int(x) for x in line.split(",") if x)


@scenario("group_session_timeout")
def group_session_timeout():
    t, g = topic_name("session"), group_name("session")
    create_topic(t, partitions=6)
    session_ms = 6000
    conf = dict(bootstrap_servers=BOOTSTRAP, group_id=g, auto_offset_reset="earliest",
                session_timeout_ms=session_ms, heartbeat_interval_ms=HB_MS)
    a = Member(g, t, session_timeout_ms=session_ms)
    child = None
    try:
        a.start()
        wait_assigned([a], [6], 6, what="first member")
        child = Child(CHILD_MEMBER, json.dumps(conf), t)
        wait_for(lambda: (lambda o: o is not None and len(o) == 3 and len(a.owned()) == 3)(child_owned(child)),
                 T, "3 + 3 partitions (child output: %s)" % child.output())
        check_split([a.owned(), child_owned(child)], 6, "two members")
        child.kill()
        t0 = time.monotonic()
        t1 = wait_assigned([a], [6], 6, timeout=session_ms / 1000 + 5,
                           what="partitions of the killed member moved")
        took = t1 - t0
        check(took >= session_ms / 1000 - HB_MS / 1000 - 1.5,
              f"partitions moved after {took:.1f}s, before the {session_ms} ms session timeout could expire")
        return f"killed member's partitions moved after {took:.1f}s (session_timeout_ms={session_ms})"
    finally:
        if child:
            child.kill()
        close_all([a])


@scenario("group_cooperative")
def group_cooperative():
    t, g = topic_name("coop"), group_name("coop")
    create_topic(t, partitions=6)
    a = Member(g, t, partition_assignment_strategy=(CooperativeStickyAssignor,))
    b = Member(g, t, partition_assignment_strategy=(CooperativeStickyAssignor,))
    try:
        a.start()
        wait_assigned([a], [6], 6, what="first member")
        before = len(a.events)
        b.start()
        wait_assigned([a, b], [3, 3], 6, what="two members")
        later = a.events[before:]
        revoked = sorted(p for kind, ps in later if kind in ("revoke", "lost") for p in ps)
        kept = sorted(a.owned())
        eq(sorted(revoked + kept), list(range(6)), f"A's revoked + kept partitions (events {later})")
        check(not any(kind == "lost" for kind, _ in later), f"A lost partitions: {later}")
        check(all(kind == "assign" or not ps for kind, ps in b.events), f"B had partitions revoked: {b.events}")
        return f"A kept {kept}, revoked only {revoked}; B got {sorted(b.owned())}"
    finally:
        close_all([a, b])


@scenario("group_static")
def group_static():
    t, g = topic_name("static"), group_name("static")
    create_topic(t, partitions=6)
    a = Member(g, t, group_instance_id="static-a")
    b = Member(g, t, group_instance_id="static-b")
    b2 = Member(g, t, group_instance_id="static-b")
    try:
        a.start()
        wait_assigned([a], [6], 6, what="first member")
        b.start()
        wait_assigned([a, b], [3, 3], 6, what="two static members")
        a_owned, b_owned = a.owned(), b.owned()
        a_events = list(a.events)
        gen = admin().describe_groups([g])[g]
        b.close()  # a static member does not send LeaveGroup
        t0 = time.monotonic()
        b2.start()
        wait_assigned([a, b2], [3, 3], 6, what="B restarted")
        took = time.monotonic() - t0
        eq(b2.owned(), b_owned, "partitions of the restarted static member")
        time.sleep(3 * HB_MS / 1000 + 1)
        eq(a.events, a_events, "A's rebalance callbacks after B's restart (no rebalance)")
        eq(a.owned(), a_owned, "A's partitions")
        desc = admin().describe_groups([g])[g]
        eq(desc["group_state"], "Stable", "group state")
        eq(sorted(m["group_instance_id"] for m in desc["members"]), ["static-a", "static-b"], "instance ids")
        check(gen["members"] and desc["members"], "members described")
        return f"B back with {sorted(b_owned)} after {took:.1f}s, no rebalance"
    finally:
        close_all([a, b, b2])


@scenario("group_commit_restart")
def group_commit_restart():
    t, g = topic_name("commit"), group_name("commit")
    create_topic(t, partitions=3)
    n = 90
    values = produce_spread(t, n, 3)
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=g, auto_offset_reset="earliest",
                      enable_auto_commit=False, max_poll_records=5)
    pos, got = {}, 0
    try:
        c.subscribe([t])
        deadline = time.monotonic() + T
        while got < 40 and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200, max_records=40 - got).values():
                for r in recs:
                    pos[r.partition] = r.offset + 1
                    got += 1
        eq(got, 40, "messages consumed before the commit")
        c.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for p, o in pos.items()})
    finally:
        c.close(autocommit=False)
    ctl("restart")
    fresh_admin()
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=g, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    try:
        committed = {p: c.committed(TopicPartition(t, p)) for p in range(3)}
        eq(committed, {p: pos.get(p) for p in range(3)}, "committed offsets after broker restart")
        c.subscribe([t])
        first, seen = {}, []
        deadline = time.monotonic() + T
        while len(seen) < n - 40 and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                for r in recs:
                    first.setdefault(r.partition, r.offset)
                    seen.append(r.value)
        eq(first, {p: pos.get(p, 0) for p in range(3) if pos.get(p, 0) < n // 3},
           "first offset consumed per partition after restart")
        eq(len(seen), n - 40, "messages consumed after restart")
        check(set(seen) <= set(values), "unexpected values")
        return f"resumed at {dict(sorted(pos.items()))}"
    finally:
        c.close(autocommit=False)


@scenario("group_consumer_protocol")
def group_consumer_protocol():
    raise NA("kafka-python 3.0.12 implements only the classic group protocol "
             "(no group_protocol setting, no ConsumerGroupHeartbeat)")


def assigned_partitions(member):
    a = member["member_assignment"]
    if hasattr(a, "partitions"):
        return sorted((tp.topic, tp.partition) for tp in a.partitions())
    return sorted((x["topic"], p) for x in a["assigned_partitions"] for p in x["partitions"])


@scenario("group_admin")
def group_admin():
    t, g = topic_name("gadmin"), group_name("gadmin")
    create_topic(t, partitions=2)
    produce_spread(t, 20, 2)
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=g, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    closed = False
    try:
        c.subscribe([t])
        got, deadline = 0, time.monotonic() + T
        while got < 20 and time.monotonic() < deadline:
            got += sum(len(r) for r in c.poll(timeout_ms=200).values())
        eq(got, 20, "messages consumed")
        c.commit()
        tp0, tp1 = TopicPartition(t, 0), TopicPartition(t, 1)

        mine = [x for x in admin().list_groups() if x["group_id"] == g]
        eq(len(mine), 1, f"{g} in ListGroups")
        eq(mine[0].get("protocol_type"), "consumer", "listed protocol type")
        eq(mine[0].get("group_state"), "Stable", "listed state")

        desc = admin().describe_groups([g])[g]
        eq(desc["error"], None, "DescribeGroups error")
        eq(desc["group_state"], "Stable", "described state")
        eq(desc["protocol_data"], "range", "assignor")
        eq(len(desc["members"]), 1, "described members")
        eq(assigned_partitions(desc["members"][0]), [(t, 0), (t, 1)], "described assignment")

        offsets = lambda: {tp.partition: om.offset for tp, om in admin().list_group_offsets(g).get(g, {}).items()}
        eq(offsets(), {0: 10, 1: 10}, "listed committed offsets")
        eq(admin().delete_groups([g]), {g: "NonEmptyGroupError"}, "deleting a non-empty group")
        res = admin().alter_group_offsets(g, {tp0: OffsetAndMetadata(1, "", -1)})
        check(res[tp0] is not Errors.NoError, "altering offsets of an active group succeeded")

        c.close(autocommit=False)
        closed = True
        wait_for(lambda: admin().describe_groups([g])[g]["group_state"] == "Empty", T, "group Empty")
        res = admin().alter_group_offsets(g, {tp0: OffsetAndMetadata(3, "", -1), tp1: OffsetAndMetadata(5, "", -1)})
        eq(res, {tp0: Errors.NoError, tp1: Errors.NoError}, "AlterConsumerGroupOffsets result")
        eq(offsets(), {0: 3, 1: 5}, "offsets after alter")
        eq(admin().delete_group_offsets(g, [tp1]), {tp1: Errors.NoError}, "OffsetDelete result")
        eq(offsets(), {0: 3}, "offsets after OffsetDelete")

        eq(admin().delete_groups([g]), {g: "OK"}, "deleting the empty group")
        check(g not in [x["group_id"] for x in admin().list_groups()], "deleted group still listed")
        eq(offsets(), {}, "offsets of the deleted group")
        return "list, describe, list/alter/delete offsets, delete (NON_EMPTY_GROUP, then ok)"
    finally:
        if not closed:
            c.close(autocommit=False)


def read_all(topic, partition=0):
    """Every record of topic[partition] from the log start to the high watermark."""
    lo, hi = watermarks(topic, partition)
    if hi == lo:
        return []
    c = consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + T
        while (not out or out[-1].offset < hi - 1) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        check(out and out[-1].offset >= hi - 1, f"read up to {hi} timed out")
        return out
    finally:
        c.close()


@scenario("compacted_topic")
def compacted_topic():
    t = topic_name("compact")
    create_topic(t, config={"cleanup.policy": "compact", "segment.ms": "100",
                            "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"})
    p = producer(retries=0)
    try:
        p.send(t, value=b"no key", partition=0).get(timeout=T)
        raise Fail("keyless record accepted by a compacted topic")
    except Errors.InvalidRecordError:
        pass
    finally:
        p.close(timeout=T)

    keys = [f"key{k}" for k in range(5)]
    msgs = [{"key": k.encode(), "value": f"{k}-v{r}".encode()} for r in range(4) for k in keys]
    msgs.append({"key": b"key1", "value": None})  # tombstone
    md = produce_all(producer(), t, msgs)
    last = {}
    for m, r in zip(msgs, md):
        last[m["key"]] = (r.offset, m["value"])
    tomb_off = last.pop(b"key1")[0]
    tick = producer()
    seen_tombstone_alone, state = False, None
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() < t0 + 60:
            tick.send(t, key=b"tick", value=str(i).encode(), partition=0).get(timeout=T)  # rolls segments
            i += 1
            recs = read_all(t)
            by_key = {}
            for r in recs:
                by_key.setdefault(r.key, []).append((r.offset, r.value))
            compacted = all(by_key.get(k) == [v] for k, v in last.items())
            k1 = by_key.get(b"key1", [])
            if compacted and k1 == [(tomb_off, None)]:
                seen_tombstone_alone = True
            state = {k.decode(): v for k, v in by_key.items() if k != b"tick"}
            if compacted and not k1:
                offs = [r.offset for r in recs]
                eq(offs, sorted(set(offs)), "offsets increasing")
                return (f"compacted to last value per key in {time.monotonic() - t0:.0f}s, tombstone "
                        f"{'seen then ' if seen_tombstone_alone else ''}removed; keyless record: INVALID_RECORD")
            time.sleep(0.5)
    finally:
        tick.close(timeout=T)
    raise Fail(f"not compacted after 60s: {str(state)[:250]}")


def txn_producer(txn_id):
    p = producer(transactional_id=txn_id)
    p.init_transactions()
    return p


def read_isolated(topic, partitions, isolation):
    """(partition, value) of every record a consumer with `isolation` reads to the end."""
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=None,
                      enable_auto_commit=False, isolation_level=isolation, request_timeout_ms=TMS)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps, timeout_ms=TMS)  # the LSO for read_committed
        out = []
        deadline = time.monotonic() + T
        while any(c.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend((r.partition, r.offset, r.value) for r in recs)
        check(all(c.position(tp) >= ends[tp] for tp in tps), f"{topic} read to its end")
        return [(p, v) for p, _, v in sorted(out)]
    finally:
        c.close()


@scenario("transactions")
def transactions():
    t = topic_name("txn")
    create_topic(t, partitions=2)
    txn_id = f"compat-{CLIENT}-{t}"
    p = txn_producer(txn_id)
    for tag, commit in (("c1", True), ("a", False), ("c2", True)):
        p.begin_transaction()
        futs = [p.send(t, value=f"{tag}-{part}".encode(), partition=part) for part in (0, 1)]
        for f in futs:
            f.get(timeout=T)
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()
    committed = read_isolated(t, 2, "read_committed")
    eq(committed, [(0, b"c1-0"), (0, b"c2-0"), (1, b"c1-1"), (1, b"c2-1")],
       "read_committed sees the committed transactions only")
    eq(len(read_isolated(t, 2, "read_uncommitted")), 6, "read_uncommitted sees the aborted records too")
    p2 = txn_producer(txn_id)
    p.begin_transaction()
    try:
        p.send(t, value=b"zombie", partition=0).get(timeout=T)
        p.commit_transaction()
        raise Fail("the fenced producer committed")
    except (Errors.ProducerFencedError, Errors.InvalidProducerEpochError, Errors.KafkaError) as e:
        check(not isinstance(e, Fail), str(e))
        fenced = type(e).__name__
    p2.begin_transaction()
    p2.send(t, value=b"live", partition=0).get(timeout=T)
    p2.commit_transaction()
    p2.close(timeout=T)
    committed = read_isolated(t, 2, "read_committed")
    eq([v for part, v in committed if part == 0], [b"c1-0", b"c2-0", b"live"],
       "after fencing: the new instance's commit only")
    return f"commit, abort, commit; the fenced instance got {fenced}"


@scenario("txn_offsets")
def txn_offsets():
    src, dst = topic_name("txn-in"), topic_name("txn-out")
    create_topic(src)
    create_topic(dst)
    produce_all(producer(), src, [{"value": f"m{i}".encode()} for i in range(6)])
    g = group_name("txn")
    c = KafkaConsumer(src, bootstrap_servers=BOOTSTRAP, **KP_SECURITY, group_id=g,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      isolation_level="read_committed", max_poll_records=3, request_timeout_ms=TMS)
    p = txn_producer(f"compat-{CLIENT}-{g}")
    try:
        for commit in (True, False):
            got = []
            deadline = time.monotonic() + T
            while len(got) < 3 and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=500, max_records=3 - len(got)).values():
                    got.extend(recs)
            eq(len(got), 3, "input records read")
            p.begin_transaction()
            for r in got:
                p.send(dst, value=r.value + b"-out", partition=0).get(timeout=T)
            p.send_offsets_to_transaction({TopicPartition(src, 0): OffsetAndMetadata(got[-1].offset + 1, "", -1)},
                                          c.group_metadata())
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
        eq(c.committed(TopicPartition(src, 0)), 3, "the group's offset is the committed transaction's")
    finally:
        c.close()
        p.close(timeout=T)
    out = read_isolated(dst, 1, "read_committed")
    eq([v for _, v in out], [b"m0-out", b"m1-out", b"m2-out"], "output of the committed transaction")
    return "offsets committed with the transaction, dropped with the aborted one"


@scenario("restart")
def restart():
    t = topic_name("restart")
    create_topic(t, config={"retention.ms": "999999999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp_ms": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    produce_all(producer(), t, msgs)
    ctl("restart")
    fresh_admin()
    eq(describe(t)["retention.ms"]["value"], "999999999999", "topic config after restart")
    eq(watermarks(t), (0, 20), "watermarks after restart")
    got = consume(t, 0, 20)
    eq([(r.key, r.value, r.timestamp, r.headers) for r in got],
       [(m["key"], m["value"], m["timestamp_ms"], m["headers"]) for m in msgs], "records after restart")
    eq(produce_all(producer(), t, [{"value": b"more"}])[0].offset, 20, "next offset after restart")


@scenario("kill9")
def kill9():
    t = topic_name("kill9")
    create_topic(t)
    p = producer(enable_idempotence=True, acks="all", linger_ms=1, delivery_timeout_ms=90000,
                 request_timeout_ms=10000)
    acked, failed = {}, []  # filled by the producer's I/O thread (dict/list updates are atomic)

    def on_ok(v):
        def cb(md):
            acked[v] = md.offset
        return cb

    def on_err(v):
        def cb(_exc):
            failed.append(v)
        return cb

    killer_err = []

    def killer():
        try:
            wait_for(lambda: len(acked) >= 300, T, "300 acknowledged messages before kill")
            ctl("kill9", t)  # on a cluster: the node leading the partition written to
        except Exception as e:  # handed to the main thread, which fails the scenario
            killer_err.append(e)

    th = threading.Thread(target=killer)
    th.start()
    i = 0
    deadline = time.monotonic() + T
    while th.is_alive() and time.monotonic() < deadline:
        v = f"m-{i}".encode()
        p.send(t, value=v, partition=0).add_callback(on_ok(v)).add_errback(on_err(v))
        i += 1
        time.sleep(0.001)
    th.join(T)
    if killer_err:
        raise killer_err[0]
    for _ in range(200):
        v = f"m-{i}".encode()
        p.send(t, value=v, partition=0).add_callback(on_ok(v)).add_errback(on_err(v))
        i += 1
    ctl("start")
    fresh_admin()
    p.flush(timeout=120)
    p.close(timeout=T)
    check(len(acked) + len(failed) == i, f"{i - len(acked) - len(failed)} sends without outcome")
    hw = watermarks(t)[1]
    got = consume(t, 0, hw) if hw else []
    seen = {}
    for r in got:
        seen[r.value] = seen.get(r.value, 0) + 1
    missing = [v for v in acked if v not in seen]
    dups = [v for v, c in seen.items() if c > 1]
    check(not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}")
    check(not dups, f"{len(dups)} messages duplicated, e.g. {dups[:3]}")
    wrong = [v for v, off in acked.items() if got[off].value != v]
    check(not wrong, f"{len(wrong)} acked offsets hold other messages, e.g. {wrong[:3]}")
    return f"{i} produced, {len(acked)} acked, {len(failed)} failed, {hw} in log"


if __name__ == "__main__":
    raise SystemExit(run_all(CLIENT))
