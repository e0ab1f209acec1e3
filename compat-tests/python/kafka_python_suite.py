"""kafka-python (pure Python client, 3.x) against Weir: every scenario of the matrix.

Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set; prints RESULT lines."""
import hashlib
import os
import threading
import time

import kafka.errors as Errors
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, KafkaAdminClient

from common import (BOOTSTRAP, CODECS, OLD_TS, ONE_MIB, Fail, check, ctl, eq, payload, run_all,
                    scenario, topic_name, wait_for)

CLIENT = "kafka-python"
T = 30
TMS = T * 1000
CREATE_TIME, LOG_APPEND_TIME = 0, 1  # ConsumerRecord.timestamp_type

_admin = []


def admin():
    if not _admin:
        _admin.append(KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TMS))
    return _admin[0]


def fresh_admin():
    """Drops the shared admin client (used after the broker restarted: a new client each time)."""
    while _admin:
        _admin.pop().close()


def producer(**extra):
    conf = dict(bootstrap_servers=BOOTSTRAP, linger_ms=5, request_timeout_ms=TMS)
    conf.update(extra)
    return KafkaProducer(**conf)


def consumer():
    return KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False,
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
    admin().create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                  "configs": config or {}}}, timeout_ms=TMS)


def describe(name, kind="topic"):
    res = admin().describe_configs([ConfigResource(kind, name)], config_filter="all")
    return res[kind][name]


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
    eq([f"{b.host}:{b.port}" for b in brokers], [BOOTSTRAP], "advertised broker address")
    eq(desc["partitions"][0]["leader_id"], getattr(brokers[0], "node_id", None), "leader")


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
    return f"{n} messages"


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


@scenario("restart")
def restart():
    t = topic_name("restart")
    create_topic(t, config={"retention.ms": "99999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp_ms": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    produce_all(producer(), t, msgs)
    ctl("restart")
    fresh_admin()
    eq(describe(t)["retention.ms"]["value"], "99999999", "topic config after restart")
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
            ctl("kill9")
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
