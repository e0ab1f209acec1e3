"""confluent-kafka-python (librdkafka) against Weir: every scenario of the matrix.

Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set; prints RESULT lines."""
import hashlib
import os
import threading
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer, TopicPartition,
                             TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, OFFSET_BEGINNING)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, ResourceType)

from common import (BOOTSTRAP, CODECS, NA, OLD_TS, ONE_MIB, Fail, check, ctl, eq, payload,
                    run_all, scenario, topic_name, wait_for)

CLIENT = "confluent-kafka"
T = 30  # seconds: bound of every single wait


_admin = []


def admin():
    """One long-lived AdminClient (a client dropped while its futures run destroys them)."""
    if not _admin:
        _admin.append(AdminClient({"bootstrap.servers": BOOTSTRAP}))
    return _admin[0]


def producer(**extra):
    conf = {"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "message.timeout.ms": 30000}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(conf)


def consumer(**extra):
    conf = {"bootstrap.servers": BOOTSTRAP, "group.id": "compat-unused",
            "enable.auto.commit": False, "enable.partition.eof": False,
            "max.partition.fetch.bytes": 4 * ONE_MIB, "fetch.max.bytes": 8 * ONE_MIB,
            "receive.message.max.bytes": 16 * ONE_MIB}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Consumer(conf)


def produce_all(p, topic, msgs, partition=0):
    """Produces msgs (dicts of produce() kwargs); returns the delivered messages in order.
    Fails if any delivery report has an error or the flush does not finish."""
    reports = []
    for m in msgs:
        p.produce(topic, partition=partition, on_delivery=lambda err, msg: reports.append((err, msg)), **m)
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
    fs = admin().create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
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
    b = list(md.brokers.values())[0]
    eq(f"{b.host}:{b.port}", BOOTSTRAP, "advertised broker address")
    tm = wait_for(lambda: (lambda m: m.topics.get(t) if m.topics.get(t) and m.topics[t].error is None
                           and m.topics[t].partitions else None)(admin().list_topics(topic=t, timeout=T)),
                  T, f"auto-created topic {t}")
    eq(sorted(tm.partitions), [0], "partitions of auto-created topic (num.partitions=1)")
    eq(tm.partitions[0].leader, b.id, "partition leader")
    delivered = produce_all(producer(), t, [{"value": b"hello"}])
    eq(delivered[0].offset(), 0, "first offset")
    return f"broker {b.id} at {b.host}:{b.port}"


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
    return f"{n} messages"


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


@scenario("restart")
def restart():
    t = topic_name("restart")
    create_topic(t, partitions=2, config={"retention.ms": "99999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    produce_all(producer(), t, msgs[:10], partition=0)
    produce_all(producer(), t, msgs[10:], partition=1)
    admin().delete_records([TopicPartition(t, 1, 3)], request_timeout=T)
    ctl("restart")
    eq(describe(t)["retention.ms"].value, "99999999", "topic config after restart")
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
            ctl("kill9")
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
