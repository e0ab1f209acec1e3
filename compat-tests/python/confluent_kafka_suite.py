"""confluent-kafka-python (librdkafka) against Weir: every scenario of the matrix.

Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set; prints RESULT lines."""
import hashlib
import json
import os
import threading
import time

from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError,
                             KafkaException, Producer, TopicPartition, TIMESTAMP_CREATE_TIME,
                             TIMESTAMP_LOG_APPEND_TIME, OFFSET_BEGINNING, OFFSET_INVALID)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, ResourceType)

from common import (BOOTSTRAP, CK_SECURITY, WRONG_PASSWORD, ck_sasl, need_sasl, BROKER_ADDRS, BROKER_CODEC, RF, CODECS, NA, OLD_TS, ONE_MIB, Child, Fail, check, check_split, ctl, eq,
                    ThreadedMember, close_all, group_name, spread, wait_assigned, payload, run_all, scenario,
                    topic_name, wait_for)

CLIENT = "confluent-kafka"
T = 30  # seconds: bound of every single wait


_admin = []


def admin():
    """One long-lived AdminClient (a client dropped while its futures run destroys them)."""
    if not _admin:
        _admin.append(AdminClient({"bootstrap.servers": BOOTSTRAP, **CK_SECURITY}))
    return _admin[0]


def producer(**extra):
    conf = {"bootstrap.servers": BOOTSTRAP, **CK_SECURITY, "linger.ms": 5, "message.timeout.ms": 30000}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(conf)


def consumer(**extra):
    conf = {"bootstrap.servers": BOOTSTRAP, **CK_SECURITY, "group.id": "compat-unused",
            "enable.auto.commit": False, "enable.partition.eof": False,
            "max.partition.fetch.bytes": 4 * ONE_MIB, "fetch.max.bytes": 8 * ONE_MIB,
            "receive.message.max.bytes": 16 * ONE_MIB}
    conf.update({k if k in ("error_cb", "logger") else k.replace("_", "."): v for k, v in extra.items()})
    return Consumer(conf)


def produce_all(p, topic, msgs, partition=0):
    """Produces msgs (dicts of produce() kwargs); returns the delivered messages in order.
    Fails if any delivery report has an error or the flush does not finish."""
    reports = []
    for m in msgs:
        p.produce(topic, **{"partition": partition, **m},
                  on_delivery=lambda err, msg: reports.append((err, msg)))
        p.poll(0)
    left = p.flush(T)
    eq(left, 0, "messages still queued after flush")
    errs = [err for err, _ in reports if err is not None]
    check(not errs, f"delivery errors: {errs[:3]}")
    eq(len(reports), len(msgs), "delivery report count")
    return [m for _, m in reports]


def consume(topic, partition, start, count, **extra):
    """Reads exactly `count` messages from `start` (assign, no group); fails on timeout or error."""
    c = consumer(**extra)
    try:
        c.assign([TopicPartition(topic, partition, start)])
        out = []
        deadline = time.monotonic() + T
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(count - len(out), 1.0):
                if m.error():
                    raise KafkaException(m.error())
                out.append(m)
        eq(len(out), count, f"messages consumed from {topic}[{partition}]@{start}")
        return out
    finally:
        c.close()


def create_topic(name, partitions=1, config=None):
    fs = admin().create_topics([NewTopic(name, num_partitions=partitions, replication_factor=RF,
                                         config=config or {})], operation_timeout=T)
    fs[name].result(T)


def describe(name):
    res = ConfigResource(ResourceType.TOPIC, name)
    return admin().describe_configs([res], request_timeout=T)[res].result(T)


def srcval(entry):
    """ConfigEntry.source as an int (it is a ConfigSource or an int depending on version)."""
    return int(getattr(entry.source, "value", entry.source))


def watermarks(topic, partition=0):
    c = consumer()
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=T)
    finally:
        c.close()


@scenario("metadata")
def metadata():
    t = topic_name("meta")
    md = admin().list_topics(topic=t, timeout=T)  # Metadata with allow_auto_topic_creation
    check(md.brokers, "no brokers in metadata")
    eq(sorted(f"{b.host}:{b.port}" for b in md.brokers.values()), BROKER_ADDRS, "advertised broker addresses")
    tm = wait_for(lambda: (lambda m: m.topics.get(t) if m.topics.get(t) and m.topics[t].error is None
                           and m.topics[t].partitions else None)(admin().list_topics(topic=t, timeout=T)),
                  T, f"auto-created topic {t}")
    eq(sorted(tm.partitions), [0], "partitions of auto-created topic (num.partitions=1)")
    p0 = tm.partitions[0]
    check(p0.leader in md.brokers, f"partition leader {p0.leader} not among brokers {sorted(md.brokers)}")
    eq(len(p0.replicas), RF, "replicas of auto-created topic (default.replication.factor)")
    check(p0.leader in p0.replicas, f"leader {p0.leader} not among replicas {p0.replicas}")
    delivered = produce_all(producer(), t, [{"value": b"hello"}])
    eq(delivered[0].offset(), 0, "first offset")
    b = md.brokers[p0.leader]
    return f"leader {b.id} at {b.host}:{b.port}, replicas {p0.replicas}"


@scenario("auth_refused")
def auth_refused():
    need_sasl()
    errors = []
    a = AdminClient({"bootstrap.servers": BOOTSTRAP, **CK_SECURITY, **ck_sasl(WRONG_PASSWORD),
                     "error_cb": errors.append})
    deadline = time.monotonic() + T
    while time.monotonic() < deadline and not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        a.poll(0.2)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    check(auth, f"no authentication error with a wrong password (errors: {[str(e) for e in errors][:3]})")
    check("invalid" in auth[0].str().lower() or "failed" in auth[0].str().lower(), f"error: {auth[0].str()}")
    md = admin().list_topics(timeout=T)  # the right password still works
    check(md.brokers, "no brokers with the right password")
    return auth[0].str()[:160]

def codec_scenario(codec):
    t = topic_name(f"codec-{codec}")
    n = 200
    msgs = [{"key": f"key-{i}".encode(), "value": payload(i, 100)} for i in range(n)]
    delivered = produce_all(producer(compression_type=codec, linger_ms=50), t, msgs)
    eq([m.offset() for m in delivered], list(range(n)), "delivered offsets")
    got = consume(t, 0, OFFSET_BEGINNING, n)
    eq([m.offset() for m in got], list(range(n)), "consumed offsets")
    eq([m.key() for m in got], [m["key"] for m in msgs], "keys")
    eq([m.value() for m in got], [m["value"] for m in msgs], "values")
    # The broker compresses: a topic whose compression.type names the codec stores the
    # uncompressed batches of this producer in it, and the consumer reads them back.
    bt = topic_name(f"codec-broker-{codec}")
    create_topic(bt, config={"compression.type": BROKER_CODEC[codec]})
    produce_all(producer(linger_ms=50), bt, msgs)
    got = consume(bt, 0, OFFSET_BEGINNING, n)
    eq([(m.offset(), m.key(), m.value()) for m in got],
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
        {"key": b"k3", "value": None, "headers": [("nullhdr", None)]},
        {"key": b"", "value": b""},
    ]
    produce_all(producer(), t, msgs)
    got = consume(t, 0, OFFSET_BEGINNING, len(msgs))
    eq([m.key() for m in got], [b"k1", None, b"k3", b""], "keys")
    eq([m.value() for m in got], [b"v1", b"v2", None, b""], "values")
    eq(got[0].headers(), [("h1", b"a"), ("h2", b""), ("h1", b"dup")], "headers of message 0")
    eq(got[1].headers(), None, "headers of message 1")
    eq(got[2].headers(), [("nullhdr", None)], "null header value")


@scenario("timestamp_create")
def timestamp_create():
    t = topic_name("ts-create")
    delivered = produce_all(producer(), t, [{"value": b"a", "timestamp": OLD_TS},
                                            {"value": b"b", "timestamp": OLD_TS + 1}])
    eq(delivered[0].timestamp(), (TIMESTAMP_CREATE_TIME, OLD_TS), "delivery report timestamp")
    got = consume(t, 0, OFFSET_BEGINNING, 2)
    eq([m.timestamp() for m in got], [(TIMESTAMP_CREATE_TIME, OLD_TS), (TIMESTAMP_CREATE_TIME, OLD_TS + 1)],
       "consumed timestamps")


@scenario("timestamp_log_append")
def timestamp_log_append():
    t = topic_name("ts-append")
    create_topic(t, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    delivered = produce_all(producer(), t, [{"value": b"a", "timestamp": OLD_TS},
                                            {"value": b"b", "timestamp": OLD_TS}])
    after = int(time.time() * 1000)
    got = consume(t, 0, OFFSET_BEGINNING, 2)
    for m in got:
        ttype, ts = m.timestamp()
        eq(ttype, TIMESTAMP_LOG_APPEND_TIME, "consumed timestamp type")
        check(before - 1000 <= ts <= after + 1000, f"LogAppendTime {ts} not within [{before}, {after}]")
    dtype, dts = delivered[0].timestamp()
    eq(dtype, TIMESTAMP_LOG_APPEND_TIME, "delivery report timestamp type")
    eq(dts, got[0].timestamp()[1], "delivery report log_append_time vs consumed")


@scenario("large_message")
def large_message():
    t = topic_name("large")
    create_topic(t, config={"max.message.bytes": str(4 * ONE_MIB)})
    big = os.urandom(ONE_MIB)
    p = producer(message_max_bytes=4 * ONE_MIB, compression_type="none")
    delivered = produce_all(p, t, [{"key": b"big", "value": big}, {"value": b"after"}])
    eq([m.offset() for m in delivered], [0, 1], "offsets")
    got = consume(t, 0, OFFSET_BEGINNING, 2)
    eq(len(got[0].value()), ONE_MIB, "size of consumed 1 MiB value")
    eq(hashlib.sha256(got[0].value()).hexdigest(), hashlib.sha256(big).hexdigest(), "1 MiB value digest")
    eq(got[1].value(), b"after", "message after the large one")


@scenario("list_offsets")
def list_offsets():
    t = topic_name("offsets")
    base = OLD_TS
    produce_all(producer(), t, [{"value": payload(i), "timestamp": base + 1000 * i} for i in range(5)])
    c = consumer()
    try:
        q = lambda ts: c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=T)[0].offset
        eq(q(base - 5000), 0, "offset for a time before the first message")
        eq(q(base), 0, "offset for the first timestamp")
        eq(q(base + 1500), 2, "offset for a time between messages 1 and 2")
        eq(q(base + 4000), 4, "offset for the last timestamp")
        eq(q(base + 9000), -1, "offset for a time after the last message (none)")
        eq(c.get_watermark_offsets(TopicPartition(t, 0), timeout=T), (0, 5), "earliest/latest")
    finally:
        c.close()


@scenario("idempotent")
def idempotent():
    t = topic_name("idem")
    n = 500
    p = producer(enable_idempotence=True, acks="all", linger_ms=2,
                 max_in_flight_requests_per_connection=5, batch_num_messages=20)
    delivered = produce_all(p, t, [{"value": payload(i)} for i in range(n)])
    eq(sorted(m.offset() for m in delivered), list(range(n)), "delivered offsets")
    got = consume(t, 0, OFFSET_BEGINNING, n)
    eq([m.value() for m in got], [payload(i) for i in range(n)], "log content (each once, in order)")
    eq(watermarks(t), (0, n), "watermarks (no duplicates)")


@scenario("admin_create_topic")
def admin_create_topic():
    t = topic_name("create")
    create_topic(t, partitions=3, config={"retention.ms": "123456789", "cleanup.policy": "compact"})
    md = admin().list_topics(timeout=T)
    check(t in md.topics, f"{t} not listed")
    eq(sorted(md.topics[t].partitions), [0, 1, 2], "partitions")
    cfg = describe(t)
    eq(cfg["retention.ms"].value, "123456789", "retention.ms")
    eq(cfg["cleanup.policy"].value, "compact", "cleanup.policy")
    fs = admin().create_topics([NewTopic(t, num_partitions=1, replication_factor=1)], operation_timeout=T)
    try:
        fs[t].result(T)
        raise Fail("creating an existing topic succeeded")
    except KafkaException as e:
        eq(e.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS, "error creating an existing topic")


@scenario("admin_describe_configs")
def admin_describe_configs():
    t = topic_name("describe")
    create_topic(t, config={"retention.ms": "86400000"})
    cfg = describe(t)
    eq(cfg["retention.ms"].value, "86400000", "override value")
    eq(srcval(cfg["retention.ms"]), ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "override source")
    eq(cfg["retention.ms"].is_default, False, "override is_default")
    eq(cfg["segment.bytes"].value, "1073741824", "default segment.bytes")
    eq(srcval(cfg["segment.bytes"]), ConfigSource.DEFAULT_CONFIG.value, "default source")
    eq(cfg["message.timestamp.type"].value, "CreateTime", "default message.timestamp.type")
    eq(cfg["cleanup.policy"].value, "delete", "default cleanup.policy")
    broker_id = list(admin().list_topics(timeout=T).brokers)[0]
    res = ConfigResource(ResourceType.BROKER, str(broker_id))
    bcfg = admin().describe_configs([res], request_timeout=T)[res].result(T)
    eq(bcfg["num.partitions"].value, "1", "broker num.partitions")
    eq(srcval(bcfg["log.dirs"]), ConfigSource.STATIC_BROKER_CONFIG.value, "broker log.dirs source (--set)")
    return f"{len(cfg)} topic configs, {len(bcfg)} broker configs"


@scenario("admin_alter_configs")
def admin_alter_configs():
    t = topic_name("alter")
    create_topic(t)

    def alter(entries):
        res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=entries)
        admin().incremental_alter_configs([res], request_timeout=T)[res].result(T)

    alter([ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET),
           ConfigEntry("retention.ms", "7654321", incremental_operation=AlterConfigOpType.SET)])
    cfg = describe(t)
    eq(cfg["max.message.bytes"].value, "1000", "altered max.message.bytes")
    eq(srcval(cfg["max.message.bytes"]), ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "altered source")
    eq(cfg["retention.ms"].value, "7654321", "altered retention.ms")
    # Takes effect: a 2000-byte record is now too large for the topic.
    p = producer(compression_type="none", retries=0)
    errs = []
    p.produce(t, value=b"y" * 2000, partition=0, on_delivery=lambda err, m: errs.append(err))
    eq(p.flush(T), 0, "queue after flush")
    check(errs and errs[0] is not None, "2000-byte record accepted despite max.message.bytes=1000")
    eq(errs[0].code(), KafkaError.MSG_SIZE_TOO_LARGE, "error for oversized record")
    # DELETE restores the default and the same record is accepted.
    alter([ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    cfg = describe(t)
    eq(srcval(cfg["max.message.bytes"]), ConfigSource.DEFAULT_CONFIG.value, "source after DELETE")
    eq(cfg["retention.ms"].value, "7654321", "untouched retention.ms after DELETE of another key")
    produce_all(producer(compression_type="none"), t, [{"value": b"y" * 2000}])


@scenario("admin_create_partitions")
def admin_create_partitions():
    t = topic_name("parts")
    create_topic(t, partitions=1)
    admin().create_partitions([NewPartitions(t, 3)], operation_timeout=T)[t].result(T)
    wait_for(lambda: len(admin().list_topics(topic=t, timeout=T).topics[t].partitions) == 3,
             T, "3 partitions in metadata")
    delivered = produce_all(producer(), t, [{"value": b"p2"}], partition=2)
    eq((delivered[0].partition(), delivered[0].offset()), (2, 0), "partition/offset in new partition")
    eq(consume(t, 2, OFFSET_BEGINNING, 1)[0].value(), b"p2", "value in new partition")


@scenario("admin_delete_topic")
def admin_delete_topic():
    t = topic_name("delete")
    create_topic(t)
    produce_all(producer(), t, [{"value": payload(i)} for i in range(3)])
    admin().delete_topics([t], operation_timeout=T)[t].result(T)
    wait_for(lambda: t not in admin().list_topics(timeout=T).topics, T, "topic gone from metadata")
    create_topic(t)  # same name again: a new, empty topic
    # In a cluster, CreateTopics answers before every broker has the new metadata (as in
    # Kafka); the client's lookup then fails locally (-190 Unknown partition).
    wait_for(lambda: len(admin().list_topics(t, timeout=T).topics[t].partitions) > 0, T,
             "re-created topic in metadata")
    eq(watermarks(t), (0, 0), "watermarks of the re-created topic")


@scenario("delete_records")
def delete_records():
    t = topic_name("delrec")
    produce_all(producer(), t, [{"value": payload(i)} for i in range(10)])
    fut = admin().delete_records([TopicPartition(t, 0, 4)], request_timeout=T)
    res = list(fut.values())[0].result(T)
    eq(res.low_watermark, 4, "low watermark returned by DeleteRecords")
    eq(watermarks(t), (4, 10), "watermarks after DeleteRecords")
    got = consume(t, 0, OFFSET_BEGINNING, 6)
    eq([m.offset() for m in got], list(range(4, 10)), "offsets readable after DeleteRecords")


# ---------------------------------------------------------------- consumer groups

HB_MS = 500  # heartbeat.interval.ms of group members: rebalances are noticed quickly


class _ErrorLog:
    """A logging.Logger stand-in for librdkafka's `logger`: warnings and errors go to a member."""

    def __init__(self, member):
        self.member = member

    def log(self, level, fmt, *args):
        if level < 30:  # confluent-kafka maps librdkafka's levels to logging's; WARNING is 30
            return
        self.member.errors.append("log: " + (fmt % args if args else fmt))


class Member(ThreadedMember):
    """One group consumer polled by its own thread (librdkafka handles are thread-safe, but
    only this thread touches it). Tracks its assignment through the rebalance callbacks
    (full sets for EAGER, increments for COOPERATIVE/KIP-848), records every message and
    commits what it consumed, synchronously, when partitions are revoked and on close."""

    def __init__(self, group, topic, classic=True, **extra):
        super().__init__(group, topic, bound=T)
        conf = {"group.id": group, "auto.offset.reset": "earliest"}
        if classic:
            conf.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": HB_MS})
        else:
            # KIP-848: librdkafka only logs most group errors; they fail the waits at once.
            conf.update({"error_cb": lambda err: self.errors.append(f"error_cb: {err}"),
                         "logger": _ErrorLog(self)})
        conf.update({k.replace("_", "."): v for k, v in extra.items()})
        self.conf = conf
        # librdkafka hands incremental sets to the callbacks for these (no rebalance_protocol()
        # in the Python binding).
        self.protocol = ("COOPERATIVE" if conf.get("partition.assignment.strategy") == "cooperative-sticky"
                         or conf.get("group.protocol") == "consumer" else "EAGER")
        self.pos = {}  # partition -> next offset to commit

    def _apply(self, c, kind, parts):
        """Applies the rebalance in the callback, as librdkafka wants. Left to the binding,
        it calls rd_kafka_rebalance_protocol() to pick assign or incremental_assign, and in a
        callback run by close() that call can block forever with the GIL held, freezing the
        whole suite (librdkafka #4041; seen on the 3-node cluster run, where close() more
        often lands in a rebalance). Assigning here ourselves skips that call."""
        if self.protocol == "EAGER":
            if kind == "assign":
                c.assign(parts)
            else:
                c.unassign()
        elif kind == "assign":
            c.incremental_assign(parts)
        else:
            c.incremental_unassign(parts)

    def _commit(self, c, parts):
        offs = [TopicPartition(self.topic, p, self.pos[p]) for p in parts if p in self.pos]
        if offs:
            try:
                for tp in c.commit(offsets=offs, asynchronous=False):
                    if tp.error:
                        self.errors.append(f"commit {tp.partition}: {tp.error}")
            except KafkaException as e:
                self.errors.append(f"commit: {e}")

    def _run(self):
        try:
            c = consumer(**self.conf)

            def on_assign(c, parts):
                with self.lock:
                    ps = {tp.partition for tp in parts}
                    if self.protocol == "EAGER":
                        self.assigned = ps
                    else:
                        self.assigned |= ps
                    self.events.append(("assign", sorted(ps)))
                self._apply(c, "assign", parts)

            def on_revoke(c, parts):
                ps = {tp.partition for tp in parts}
                self._commit(c, ps)
                with self.lock:
                    self.assigned -= ps
                    self.events.append(("revoke", sorted(ps)))
                self._apply(c, "revoke", parts)

            def on_lost(c, parts):
                with self.lock:
                    ps = {tp.partition for tp in parts}
                    self.assigned -= ps
                    self.events.append(("lost", sorted(ps)))
                self._apply(c, "lost", parts)

            c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
            self.subscribed_at = time.monotonic()
            while not self.stop_ev.is_set():
                m = c.poll(0.1)
                if m is None:
                    continue
                if m.error():
                    self.errors.append(str(m.error()))
                    continue
                with self.lock:
                    self.msgs.append((m.partition(), m.offset(), m.key(), m.value()))
                    self.pos[m.partition()] = m.offset() + 1
            with self.lock:
                owned = set(self.assigned)
            self._commit(c, owned)
            c.close()  # revokes (commits again) and leaves; a static member does not leave
        except Exception as e:  # reported through self.errors
            self.errors.append(f"{type(e).__name__}: {e}")


def produce_spread(topic, n, partitions, tag="m"):
    """Produces n keyed messages, message i to partition i % partitions; returns the values."""
    msgs = [{"key": k, "value": v, "partition": part} for k, v, part in spread(n, partitions, tag)]
    produce_all(producer(), topic, msgs)
    return [m["value"] for m in msgs]


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
        time.sleep(1)  # duplicates, if any, arrive now
        got = [v for m in ms for v in m.values()]
        dups = len(got) - len(set(got))
        check(dups == 0, f"{dups} messages consumed twice")
        eq(sorted(got), sorted(values), "messages consumed by the group")
        wait_assigned(ms, [4, 4, 4], 12, what="final assignment")
        errs = [e for m in ms for e in m.errors]
        check(not errs, f"member errors: {errs[:3]}")
        return f"3 members, rebalance {t1 - t0:.1f}s, {n} messages once each"
    finally:
        close_all(ms)


@scenario("group_rebalance")
def group_rebalance():
    t, g = topic_name("rebal"), group_name("rebal")
    create_topic(t, partitions=12)
    values = set(produce_spread(t, 600, 12, "pre"))
    ms = [Member(g, t) for _ in range(4)]
    p = producer()
    produced, stop = [], threading.Event()

    def produce_loop():
        i = 0
        while not stop.is_set():
            v = f"during-{i}".encode()
            p.produce(t, key=v, value=v, partition=i % 12,
                      on_delivery=lambda err, m: produced.append(m.value()) if err is None else None)
            p.poll(0.01)
            i += 1
        p.flush(T)

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
        rest = [ms[0], ms[2], ms[3]]
        t3 = wait_assigned(rest, [4, 4, 4], 12, what="after a member left")
        stop.set()
        th.join(T)
        values |= set(produced)
        got = lambda: {v for m in ms for v in m.values()}
        wait_for(lambda: values <= got(), T, f"all {len(values)} messages consumed")
        total = sum(len(m.values()) for m in ms)
        errs = [e for m in ms for e in m.errors]
        check(not errs, f"member errors: {errs[:3]}")
        return (f"join rebalance {t1 - t0:.1f}s, leave rebalance {t3 - t2:.1f}s, {len(values)} messages, "
                f"{total - len(values)} redelivered")
    finally:
        stop.set()
        close_all(ms)


CHILD_MEMBER = r"""
import json, sys
from confluent_kafka import Consumer
conf, topic = json.loads(sys.argv[1]), sys.argv[2]
c = Consumer(conf)
owned = set()
def show():
    print("ASSIGNED " + ",".join(str(p) for p in sorted(owned)), flush=True)
def on_assign(c, parts):
    owned.clear(); owned.update(tp.partition for tp in parts); show()
def on_revoke(c, parts):
    owned.clear(); show()
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
print("SUBSCRIBED", flush=True)
while True:
    c.poll(0.2)
"""


def child_owned(child):
    line = child.last("ASSIGNED ")
    return None if line is None else frozenset(int(x) for x in line.split(",") if x)


@scenario("group_session_timeout")
def group_session_timeout():
    t, g = topic_name("session"), group_name("session")
    create_topic(t, partitions=6)
    session_ms = 6000
    conf = {"bootstrap.servers": BOOTSTRAP, **CK_SECURITY, "group.id": g, "auto.offset.reset": "earliest",
            "session.timeout.ms": session_ms, "heartbeat.interval.ms": HB_MS}
    a = Member(g, t, session_timeout_ms=session_ms)
    child = None
    try:
        a.start()
        wait_assigned([a], [6], 6, what="first member")
        child = Child(CHILD_MEMBER, json.dumps(conf), t)
        wait_for(lambda: (lambda o: o is not None and len(o) == 3 and len(a.owned()) == 3)(child_owned(child)),
                 T, f"3 + 3 partitions (child: {child.output()})")
        check_split([a.owned(), child_owned(child)], 6, "two members")
        child.kill()
        t0 = time.monotonic()
        bound = session_ms / 1000 + 5
        t1 = wait_assigned([a], [6], 6, timeout=bound, what="partitions of the killed member moved")
        took = t1 - t0
        check(took >= session_ms / 1000 - HB_MS / 1000 - 1.5,
              f"partitions moved after {took:.1f}s, before the {session_ms} ms session timeout could expire")
        return f"killed member's partitions moved after {took:.1f}s (session.timeout.ms={session_ms})"
    finally:
        if child:
            child.kill()
        close_all([a])


@scenario("group_cooperative")
def group_cooperative():
    t, g = topic_name("coop"), group_name("coop")
    create_topic(t, partitions=6)
    a = Member(g, t, partition_assignment_strategy="cooperative-sticky")
    b = Member(g, t, partition_assignment_strategy="cooperative-sticky")
    try:
        a.start()
        wait_assigned([a], [6], 6, what="first member")
        before = len(a.events)
        b.start()
        wait_assigned([a, b], [3, 3], 6, what="two members")
        later = a.events[before:]
        revoked = sorted(p for kind, ps in later if kind in ("revoke", "lost") for p in ps)
        kept = sorted(a.owned())
        eq(sorted(revoked + kept), list(range(6)), "A's revoked + kept partitions")
        check(all(len(ps) < 6 for kind, ps in later if kind == "revoke"), f"A had everything revoked: {later}")
        check(not any(kind == "lost" for kind, _ in later), f"A lost partitions: {later}")
        check(all(kind == "assign" for kind, _ in b.events), f"B had partitions revoked: {b.events}")
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
        b.close()  # a static member does not send LeaveGroup
        t0 = time.monotonic()
        b2.start()
        wait_assigned([a, b2], [3, 3], 6, what="B restarted")
        took = time.monotonic() - t0
        eq(b2.owned(), b_owned, "partitions of the restarted static member")
        time.sleep(3 * HB_MS / 1000 + 1)  # a rebalance, if any, would reach A through its heartbeat
        eq(a.events, a_events, "A's rebalance callbacks after B's restart (no rebalance)")
        eq(a.owned(), a_owned, "A's partitions")
        desc = admin().describe_consumer_groups([g], request_timeout=T)[g].result(T)
        eq(desc.state, ConsumerGroupState.STABLE, "group state")
        eq(sorted(m.group_instance_id for m in desc.members), ["static-a", "static-b"], "instance ids")
        return f"B back with {sorted(b_owned)} after {took:.1f}s, no rebalance"
    finally:
        close_all([a, b, b2])


@scenario("group_commit_restart")
def group_commit_restart():
    t, g = topic_name("commit"), group_name("commit")
    create_topic(t, partitions=3)
    n = 90
    values = produce_spread(t, n, 3)
    c = consumer(group_id=g, auto_offset_reset="earliest")
    pos = {}
    try:
        c.subscribe([t])
        deadline = time.monotonic() + T
        got = 0
        while got < 40 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                pos[m.partition()] = m.offset() + 1
                got += 1
        eq(got, 40, "messages consumed before the commit")
        res = c.commit(offsets=[TopicPartition(t, p, o) for p, o in pos.items()], asynchronous=False)
        check(all(tp.error is None for tp in res), f"commit errors: {res}")
    finally:
        c.close()
    # kill -9, not a clean stop: an acknowledged commit was fsynced (and, on a cluster,
    # replicated) before its answer. On a cluster the group's coordinator is killed.
    ctl("kill9", f"group:{g}")
    ctl("start")
    c = consumer(group_id=g, auto_offset_reset="earliest")
    try:
        tps = [TopicPartition(t, p) for p in range(3)]
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=T)}
        want = {p: pos.get(p, OFFSET_INVALID) for p in range(3)}
        eq(committed, want, "committed offsets after kill -9 and restart")
        c.subscribe([t])
        first, seen = {}, []
        deadline = time.monotonic() + T
        while len(seen) < n - 40 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                first.setdefault(m.partition(), m.offset())
                seen.append(m.value())
        eq(first, {p: pos.get(p, 0) for p in range(3) if pos.get(p, 0) < n // 3},
           "first offset consumed per partition after restart")
        eq(len(seen), n - 40, "messages consumed after restart")
        check(set(seen) <= set(values), "unexpected values")
        return f"kill -9 after the commit; resumed at {dict(sorted(pos.items()))}"
    finally:
        c.close()


@scenario("group_consumer_protocol")
def group_consumer_protocol():
    t, g = topic_name("kip848"), group_name("kip848")
    create_topic(t, partitions=6)
    n = 600
    values = produce_spread(t, n, 6)
    ms = [Member(g, t, classic=False, group_protocol="consumer") for _ in range(2)]
    try:
        ms[0].start()
        try:
            wait_assigned(ms[:1], [6], 6, what="first KIP-848 member")
        except Fail as e:
            raise Fail(f"no assignment through ConsumerGroupHeartbeat (KIP-848) within {T}s, "
                       f"librdkafka reported {ms[0].errors[:2] or 'no error'}: {e}") from None
        t0 = ms[1].start()
        t1 = wait_assigned(ms, [3, 3], 6, what="two KIP-848 members")
        got = lambda: {v for m in ms for v in m.values()}
        wait_for(lambda: got() >= set(values), T, f"{n} messages consumed")
        errs = [e for m in ms for e in m.errors]
        check(not errs, f"member errors: {errs[:3]}")
        return f"2 members 3+3, rebalance {t1 - t0:.1f}s, {n} messages"
    finally:
        close_all(ms)


@scenario("group_admin")
def group_admin():
    t, g = topic_name("gadmin"), group_name("gadmin")
    create_topic(t, partitions=2)
    produce_spread(t, 20, 2)
    c = consumer(group_id=g, auto_offset_reset="earliest")
    closed = False
    try:
        c.subscribe([t])
        got, deadline = 0, time.monotonic() + T
        while got < 20 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got += 1
        eq(got, 20, "messages consumed")
        c.commit(asynchronous=False)

        listed = admin().list_consumer_groups(request_timeout=T).result(T)
        mine = [x for x in listed.valid if x.group_id == g]
        eq(len(mine), 1, f"{g} in ListGroups")
        eq(mine[0].state, ConsumerGroupState.STABLE, "listed state")
        eq(mine[0].is_simple_consumer_group, False, "listed simple consumer group")

        desc = admin().describe_consumer_groups([g], request_timeout=T)[g].result(T)
        eq(desc.state, ConsumerGroupState.STABLE, "described state")
        eq(len(desc.members), 1, "described members")
        eq(desc.partition_assignor, "range", "assignor")
        eq(sorted((tp.topic, tp.partition) for tp in desc.members[0].assignment.topic_partitions),
           [(t, 0), (t, 1)], "described assignment")

        def offsets():
            req = ConsumerGroupTopicPartitions(g, [TopicPartition(t, 0), TopicPartition(t, 1)])
            res = admin().list_consumer_group_offsets([req], request_timeout=T)[g].result(T)
            return {tp.partition: tp.offset for tp in res.topic_partitions}

        eq(offsets(), {0: 10, 1: 10}, "listed committed offsets")
        try:
            admin().delete_consumer_groups([g], request_timeout=T)[g].result(T)
            raise Fail("deleting a group with a member succeeded")
        except KafkaException as e:
            eq(e.args[0].code(), KafkaError.NON_EMPTY_GROUP, "error deleting a non-empty group")

        c.close()
        closed = True
        wait_for(lambda: admin().describe_consumer_groups([g], request_timeout=T)[g].result(T).state
                 == ConsumerGroupState.EMPTY, T, "group Empty after its member left")
        req = ConsumerGroupTopicPartitions(g, [TopicPartition(t, 0, 3), TopicPartition(t, 1, 5)])
        res = admin().alter_consumer_group_offsets([req], request_timeout=T)[g].result(T)
        check(all(tp.error is None for tp in res.topic_partitions), f"alter errors: {res.topic_partitions}")
        eq(offsets(), {0: 3, 1: 5}, "offsets after AlterConsumerGroupOffsets")

        admin().delete_consumer_groups([g], request_timeout=T)[g].result(T)
        listed = admin().list_consumer_groups(request_timeout=T).result(T)
        check(g not in [x.group_id for x in listed.valid], "deleted group still listed")
        eq(offsets(), {0: OFFSET_INVALID, 1: OFFSET_INVALID}, "offsets of the deleted group")
        return "list, describe, list/alter offsets, delete (NON_EMPTY_GROUP, then ok); delete offsets: no API"
    finally:
        if not closed:
            c.close()


def read_all(topic, partition=0):
    """Every record of topic[partition] from the log start to the high watermark."""
    lo, hi = watermarks(topic, partition)
    if hi == lo:
        return []
    c = consumer()
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + T
        while (not out or out[-1].offset() < hi - 1) and time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if m.error():
                    raise KafkaException(m.error())
                out.append(m)
        check(out and out[-1].offset() >= hi - 1, f"read up to {hi} timed out")
        return out
    finally:
        c.close()


@scenario("compacted_topic")
def compacted_topic():
    t = topic_name("compact")
    create_topic(t, config={"cleanup.policy": "compact", "segment.ms": "100",
                            "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"})
    # Keyless records in one batch: the batch is refused, the broker names the records at
    # fault (Produce v8+ record_errors) and librdkafka fails the others with its own
    # "invalid different record" (-138). (With a single record error librdkafka gives
    # every record of the batch the partition's INVALID_RECORD instead.)
    p = producer(retries=0, linger_ms=200)
    errs = []
    for key in (b"kx", None, b"ky", None):
        p.produce(t, key=key, value=b"v", partition=0, on_delivery=lambda err, m: errs.append(err))
    eq(p.flush(T), 0, "queue after flush")
    check(len(errs) == 4 and all(e is not None for e in errs),
          f"records of a batch with keyless records accepted: {errs}")
    other = getattr(KafkaError, "_INVALID_DIFFERENT_RECORD", -138)
    eq([e.code() for e in errs], [other, KafkaError.INVALID_RECORD, other, KafkaError.INVALID_RECORD],
       "per-record errors of a batch with two keyless records")

    keys = [f"key{k}" for k in range(5)]
    msgs = [{"key": k.encode(), "value": f"{k}-v{r}".encode()} for r in range(4) for k in keys]
    msgs.append({"key": b"key1", "value": None})  # tombstone
    delivered = produce_all(producer(), t, msgs)
    last = {}
    for m in delivered:
        last[m.key()] = (m.offset(), m.value())
    tomb_off = last.pop(b"key1")[0]
    tick = producer()
    seen_tombstone_alone = False
    state = None
    deadline = time.monotonic() + 60
    t0 = time.monotonic()
    i = 0
    while time.monotonic() < deadline:
        tick.produce(t, key=b"tick", value=str(i).encode(), partition=0)  # rolls segments
        tick.flush(T)
        i += 1
        recs = read_all(t)
        by_key = {}
        for m in recs:
            by_key.setdefault(m.key(), []).append((m.offset(), m.value()))
        compacted = all(by_key.get(k) == [v] for k, v in last.items())
        k1 = by_key.get(b"key1", [])
        if compacted and k1 == [(tomb_off, None)]:
            seen_tombstone_alone = True
        state = {k.decode(): v for k, v in by_key.items() if k != b"tick"}
        if compacted and not k1:
            offs = [m.offset() for m in recs]
            eq(offs, sorted(set(offs)), "offsets increasing")
            return (f"compacted to last value per key in {time.monotonic() - t0:.0f}s, tombstone "
                    f"{'seen then ' if seen_tombstone_alone else ''}removed; keyless record: INVALID_RECORD")
        time.sleep(0.5)
    raise Fail(f"not compacted after 60s: {str(state)[:250]}")


def txn_producer(txn_id, **extra):
    p = producer(transactional_id=txn_id, **extra)
    p.init_transactions(T)
    return p


def read_isolated(topic, partitions, isolation):
    """(partition, value) of every record a consumer with `isolation` reads to the end."""
    c = consumer(isolation_level=isolation, enable_partition_eof=True)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, eof = [], set()
        deadline = time.monotonic() + T
        while len(eof) < partitions and time.monotonic() < deadline:
            for m in c.consume(100, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                out.append((m.partition(), m.offset(), m.value()))
        eq(len(eof), partitions, f"partitions of {topic} read to the end")
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
        for part in (0, 1):
            p.produce(t, value=f"{tag}-{part}".encode(), partition=part)
        # Delivered first: an abort purges what librdkafka has not sent yet.
        eq(p.flush(T), 0, "transactional records delivered")
        if commit:
            p.commit_transaction(T)
        else:
            p.abort_transaction(T)
    committed = read_isolated(t, 2, "read_committed")
    eq(committed, [(0, b"c1-0"), (0, b"c2-0"), (1, b"c1-1"), (1, b"c2-1")],
       "read_committed sees the committed transactions only")
    everything = read_isolated(t, 2, "read_uncommitted")
    eq(len(everything), 6, "read_uncommitted sees the aborted records too")
    # A second instance fences the first.
    p2 = txn_producer(txn_id)
    p.begin_transaction()
    p.produce(t, value=b"zombie", partition=0)
    try:
        p.commit_transaction(T)
        raise Fail("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        check(err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                            KafkaError.INVALID_PRODUCER_EPOCH),
              f"fenced producer's error: {err}")
    p2.begin_transaction()
    p2.produce(t, value=b"live", partition=0)
    p2.commit_transaction(T)
    committed = read_isolated(t, 2, "read_committed")
    eq([v for part, v in committed if part == 0], [b"c1-0", b"c2-0", b"live"],
       "after fencing: the new instance's commit only")
    return "commit, abort, commit; fenced by a second instance"


@scenario("txn_offsets")
def txn_offsets():
    src, dst = topic_name("txn-in"), topic_name("txn-out")
    create_topic(src)
    create_topic(dst)
    produce_all(producer(), src, [{"value": f"m{i}".encode()} for i in range(6)])
    g = group_name("txn")
    c = consumer(group_id=g, auto_offset_reset="earliest", isolation_level="read_committed")
    c.subscribe([src])
    p = txn_producer(f"compat-{CLIENT}-{g}")
    try:
        for commit in (True, False):
            got = []
            deadline = time.monotonic() + T
            while len(got) < 3 and time.monotonic() < deadline:
                for m in c.consume(3 - len(got), 0.5):
                    if m.error():
                        raise KafkaException(m.error())
                    got.append(m)
            eq(len(got), 3, "input records read")
            p.begin_transaction()
            for m in got:
                p.produce(dst, value=m.value() + b"-out", partition=0)
            eq(p.flush(T), 0, "transactional records delivered")
            p.send_offsets_to_transaction([TopicPartition(src, 0, got[-1].offset() + 1)],
                                          c.consumer_group_metadata(), T)
            if commit:
                p.commit_transaction(T)
            else:
                p.abort_transaction(T)
        committed = c.committed([TopicPartition(src, 0)], timeout=T)
        eq(committed[0].offset, 3, "the group's offset is the committed transaction's")
    finally:
        c.close()
    out = read_isolated(dst, 1, "read_committed")
    eq([v for _, v in out], [b"m0-out", b"m1-out", b"m2-out"], "output of the committed transaction")
    return "offsets committed with the transaction, dropped with the aborted one"


@scenario("restart")
def restart():
    t = topic_name("restart")
    create_topic(t, partitions=2, config={"retention.ms": "999999999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    produce_all(producer(), t, msgs[:10], partition=0)
    produce_all(producer(), t, msgs[10:], partition=1)
    admin().delete_records([TopicPartition(t, 1, 3)], request_timeout=T)
    ctl("restart")
    eq(describe(t)["retention.ms"].value, "999999999999", "topic config after restart")
    eq(watermarks(t, 0), (0, 10), "partition 0 watermarks after restart")
    eq(watermarks(t, 1), (3, 10), "partition 1 watermarks (after DeleteRecords) after restart")
    got = consume(t, 0, OFFSET_BEGINNING, 10) + consume(t, 1, OFFSET_BEGINNING, 7)
    want = msgs[:10] + msgs[13:]
    eq([m.key() for m in got], [m["key"] for m in want], "keys after restart")
    eq([m.value() for m in got], [m["value"] for m in want], "values after restart")
    eq([m.timestamp()[1] for m in got], [m["timestamp"] for m in want], "timestamps after restart")
    eq([m.headers() for m in got], [m["headers"] for m in want], "headers after restart")
    d = produce_all(producer(), t, [{"value": b"more"}], partition=0)
    eq(d[0].offset(), 10, "next offset after restart")


@scenario("kill9")
def kill9():
    t = topic_name("kill9")
    create_topic(t)
    p = producer(enable_idempotence=True, acks="all", linger_ms=1, message_timeout_ms=60000)
    acked, failed = {}, []

    def report(err, msg):
        if err is None:
            acked[msg.value()] = msg.offset()
        else:
            failed.append(msg.value())

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
    while th.is_alive() and time.monotonic() < deadline:  # produce until the kill happened
        p.produce(t, value=f"m-{i}".encode(), partition=0, on_delivery=report)
        i += 1
        p.poll(0.001)
    th.join(T)
    if killer_err:
        raise killer_err[0]
    for _ in range(200):  # produced while the broker is down
        p.produce(t, value=f"m-{i}".encode(), partition=0, on_delivery=report)
        i += 1
    ctl("start")
    eq(p.flush(90), 0, "messages still queued 90s after restart")
    total = i
    check(len(acked) >= 300, f"only {len(acked)} acked")
    hw = watermarks(t)[1]
    got = consume(t, 0, OFFSET_BEGINNING, hw) if hw else []
    seen = {}
    for m in got:
        seen[m.value()] = seen.get(m.value(), 0) + 1
    missing = [v for v in acked if seen.get(v, 0) == 0]
    dups = [v for v, c in seen.items() if c > 1]
    check(not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}")
    check(not dups, f"{len(dups)} messages duplicated, e.g. {dups[:3]}")
    wrong = [v for v, off in acked.items() if got[off].value() != v]
    check(not wrong, f"{len(wrong)} acked offsets hold other messages, e.g. {wrong[:3]}")
    return f"{total} produced, {len(acked)} acked, {len(failed)} failed, {hw} in log"


if __name__ == "__main__":
    raise SystemExit(run_all(CLIENT))
