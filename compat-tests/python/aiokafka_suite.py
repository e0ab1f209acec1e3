"""aiokafka (asyncio client) against Weir: every scenario of the matrix.

aiokafka's admin client returns raw protocol responses; they are checked field by field.
Its AlterConfigs is the non-incremental one. Run by compat-tests/run with WEIR_BOOTSTRAP
and WEIR_CTL set; prints RESULT lines."""
import asyncio
import hashlib
import os
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import MessageSizeTooLargeError

from common import (BOOTSTRAP, CODECS, OLD_TS, ONE_MIB, Fail, check, ctl, eq, payload, run_all,
                    scenario, topic_name)

CLIENT = "aiokafka"
T = 30
TMS = T * 1000
CREATE_TIME, LOG_APPEND_TIME = 0, 1
SRC_DYNAMIC_TOPIC, SRC_STATIC_BROKER, SRC_DEFAULT = 1, 4, 5
TOPIC_ALREADY_EXISTS = 36


def sync(coro_fn):
    """Runs an async scenario in its own event loop, bounded by 150 s."""
    return lambda: asyncio.run(asyncio.wait_for(coro_fn(), 150))


class Admin:
    async def __aenter__(self):
        self.a = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TMS)
        await self.a.start()
        return self.a

    async def __aexit__(self, *exc):
        await self.a.close()


async def producer(**extra):
    conf = dict(bootstrap_servers=BOOTSTRAP, linger_ms=5, request_timeout_ms=TMS)
    conf.update(extra)
    p = AIOKafkaProducer(**conf)
    await p.start()
    return p


async def consumer():
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False,
                         max_partition_fetch_bytes=4 * ONE_MIB, fetch_max_bytes=8 * ONE_MIB,
                         request_timeout_ms=TMS)
    await c.start()
    return c


async def produce_all(topic, msgs, partition=0, **conf):
    """Sends msgs (dicts of send() kwargs) together; returns the RecordMetadata list."""
    p = await producer(**conf)
    try:
        futs = [await p.send(topic, partition=partition, **m) for m in msgs]
        return [await asyncio.wait_for(f, T) for f in futs]
    finally:
        await p.stop()


async def consume(topic, partition, count):
    c = await consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + T
        while len(out) < count and time.monotonic() < deadline:
            for recs in (await c.getmany(tp, timeout_ms=500)).values():
                out.extend(recs)
        eq(len(out), count, f"records consumed from {topic}[{partition}]")
        return out
    finally:
        await c.stop()


async def watermarks(topic, partition=0):
    c = await consumer()
    try:
        tp = TopicPartition(topic, partition)
        return (await c.beginning_offsets([tp]))[tp], (await c.end_offsets([tp]))[tp]
    finally:
        await c.stop()


async def create_topic(name, partitions=1, config=None):
    async with Admin() as a:
        resp = (await a.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})],
                                      timeout_ms=TMS)).to_object()
    return {e["topic"]: e["error_code"] for e in resp["topic_errors"]}[name]


async def create_topic_ok(name, partitions=1, config=None):
    eq(await create_topic(name, partitions, config), 0, f"CreateTopics error code for {name}")


async def describe(name, kind=ConfigResourceType.TOPIC):
    """{config name: (value, source)} from DescribeConfigs."""
    async with Admin() as a:
        resps = await a.describe_configs([ConfigResource(kind, name)])
    res = resps[0].to_object()["resources"][0]
    eq(res["error_code"], 0, "DescribeConfigs error code")
    return {e["config_names"]: (e["config_value"], e.get("config_source")) for e in res["config_entries"]}


def codec_scenario(codec):
    async def run():
        t = topic_name(f"codec-{codec}")
        n = 200
        msgs = [{"key": f"key-{i}".encode(), "value": payload(i, 100)} for i in range(n)]
        kw = {} if codec == "none" else {"compression_type": codec}
        md = await produce_all(t, msgs, linger_ms=50, **kw)
        eq([m.offset for m in md], list(range(n)), "delivered offsets")
        got = await consume(t, 0, n)
        eq([r.offset for r in got], list(range(n)), "consumed offsets")
        eq([r.key for r in got], [m["key"] for m in msgs], "keys")
        eq([r.value for r in got], [m["value"] for m in msgs], "values")
        return f"{n} messages"
    return sync(run)()


for _codec in CODECS:
    scenario(f"codec_{_codec}")(lambda c=_codec: codec_scenario(c))


@scenario("metadata")
@sync
async def metadata():
    t = topic_name("meta")
    md = await produce_all(t, [{"value": b"hello"}])  # produce to an unknown topic auto-creates it
    eq(md[0].offset, 0, "first offset")
    async with Admin() as a:
        cluster = await a.describe_cluster()
        topics = await a.describe_topics([t])
    eq([f"{b['host']}:{b['port']}" for b in cluster["brokers"]], [BOOTSTRAP], "advertised broker address")
    eq([p["partition"] for p in topics[0]["partitions"]], [0], "partitions of auto-created topic")
    eq(topics[0]["partitions"][0]["leader"], cluster["brokers"][0]["node_id"], "leader")


@scenario("keys_headers")
@sync
async def keys_headers():
    t = topic_name("keys")
    msgs = [
        {"key": b"k1", "value": b"v1", "headers": [("h1", b"a"), ("h2", b""), ("h1", b"dup")]},
        {"key": None, "value": b"v2"},
        {"key": b"k3", "value": None, "headers": [("nullhdr", None)]},
        {"key": b"", "value": b""},
    ]
    await produce_all(t, msgs)
    got = await consume(t, 0, len(msgs))
    eq([r.key for r in got], [b"k1", None, b"k3", b""], "keys")
    eq([r.value for r in got], [b"v1", b"v2", None, b""], "values")
    eq(list(got[0].headers), [("h1", b"a"), ("h2", b""), ("h1", b"dup")], "headers")
    eq(list(got[1].headers), [], "no headers")
    eq(list(got[2].headers), [("nullhdr", None)], "null header value")


@scenario("timestamp_create")
@sync
async def timestamp_create():
    t = topic_name("ts-create")
    md = await produce_all(t, [{"value": b"a", "timestamp_ms": OLD_TS}, {"value": b"b", "timestamp_ms": OLD_TS + 1}])
    eq((md[0].timestamp_type, md[0].timestamp), (CREATE_TIME, OLD_TS), "RecordMetadata timestamp")
    got = await consume(t, 0, 2)
    eq([(r.timestamp_type, r.timestamp) for r in got], [(CREATE_TIME, OLD_TS), (CREATE_TIME, OLD_TS + 1)],
       "consumed timestamps")


@scenario("timestamp_log_append")
@sync
async def timestamp_log_append():
    t = topic_name("ts-append")
    await create_topic_ok(t, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    md = await produce_all(t, [{"value": b"a", "timestamp_ms": OLD_TS}])
    after = int(time.time() * 1000)
    got = await consume(t, 0, 1)
    eq(got[0].timestamp_type, LOG_APPEND_TIME, "timestamp type")
    check(before - 1000 <= got[0].timestamp <= after + 1000,
          f"LogAppendTime {got[0].timestamp} not within [{before}, {after}]")
    eq((md[0].timestamp_type, md[0].timestamp), (LOG_APPEND_TIME, got[0].timestamp), "RecordMetadata timestamp")


@scenario("large_message")
@sync
async def large_message():
    t = topic_name("large")
    await create_topic_ok(t, config={"max.message.bytes": str(4 * ONE_MIB)})
    big = os.urandom(ONE_MIB)
    md = await produce_all(t, [{"key": b"big", "value": big}, {"value": b"after"}], max_request_size=4 * ONE_MIB)
    eq([m.offset for m in md], [0, 1], "offsets")
    got = await consume(t, 0, 2)
    eq(hashlib.sha256(got[0].value).hexdigest(), hashlib.sha256(big).hexdigest(), "1 MiB value digest")
    eq(got[1].value, b"after", "message after the large one")


@scenario("list_offsets")
@sync
async def list_offsets():
    t = topic_name("offsets")
    await produce_all(t, [{"value": payload(i), "timestamp_ms": OLD_TS + 1000 * i} for i in range(5)])
    tp = TopicPartition(t, 0)
    c = await consumer()
    try:
        async def q(ts):
            r = (await c.offsets_for_times({tp: ts}))[tp]
            return None if r is None else (r.offset, r.timestamp)
        eq(await q(OLD_TS - 5000), (0, OLD_TS), "offset before first timestamp")
        eq(await q(OLD_TS + 1500), (2, OLD_TS + 2000), "offset between messages 1 and 2")
        eq(await q(OLD_TS + 4000), (4, OLD_TS + 4000), "offset for last timestamp")
        eq(await q(OLD_TS + 9000), None, "offset after last timestamp (none)")
        eq((await c.beginning_offsets([tp]))[tp], 0, "earliest")
        eq((await c.end_offsets([tp]))[tp], 5, "latest")
    finally:
        await c.stop()


@scenario("idempotent")
@sync
async def idempotent():
    t = topic_name("idem")
    n = 500
    md = await produce_all(t, [{"value": payload(i)} for i in range(n)], enable_idempotence=True, acks="all",
                           linger_ms=2, max_batch_size=2048)
    eq(sorted(m.offset for m in md), list(range(n)), "delivered offsets")
    got = await consume(t, 0, n)
    eq([r.value for r in got], [payload(i) for i in range(n)], "log content (each once, in order)")
    eq(await watermarks(t), (0, n), "watermarks (no duplicates)")


@scenario("admin_create_topic")
@sync
async def admin_create_topic():
    t = topic_name("create")
    await create_topic_ok(t, partitions=3, config={"retention.ms": "123456789", "cleanup.policy": "compact"})
    async with Admin() as a:
        check(t in await a.list_topics(), f"{t} not listed")
        desc = await a.describe_topics([t])
    eq(sorted(p["partition"] for p in desc[0]["partitions"]), [0, 1, 2], "partitions")
    cfg = await describe(t)
    eq(cfg["retention.ms"][0], "123456789", "retention.ms")
    eq(cfg["cleanup.policy"][0], "compact", "cleanup.policy")
    eq(await create_topic(t), TOPIC_ALREADY_EXISTS, "error code creating an existing topic")


@scenario("admin_describe_configs")
@sync
async def admin_describe_configs():
    t = topic_name("describe")
    await create_topic_ok(t, config={"retention.ms": "86400000"})
    cfg = await describe(t)
    eq(cfg["retention.ms"], ("86400000", SRC_DYNAMIC_TOPIC), "override (value, source)")
    eq(cfg["segment.bytes"], ("1073741824", SRC_DEFAULT), "default segment.bytes (value, source)")
    eq(cfg["message.timestamp.type"][0], "CreateTime", "default message.timestamp.type")
    async with Admin() as a:
        broker_id = (await a.describe_cluster())["brokers"][0]["node_id"]
    bcfg = await describe(str(broker_id), ConfigResourceType.BROKER)
    eq(bcfg["num.partitions"][0], "1", "broker num.partitions")
    eq(bcfg["log.dirs"][1], SRC_STATIC_BROKER, "broker log.dirs source")
    return f"{len(cfg)} topic configs, {len(bcfg)} broker configs"


@scenario("admin_alter_configs")
@sync
async def admin_alter_configs():
    t = topic_name("alter")
    await create_topic_ok(t)

    async def alter(configs):
        async with Admin() as a:
            resps = await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs=configs)])
        res = resps[0].to_object()["resources"][0]
        eq(res["error_code"], 0, f"AlterConfigs error ({res.get('error_message')})")

    await alter({"max.message.bytes": "1000", "retention.ms": "7654321"})
    cfg = await describe(t)
    eq(cfg["max.message.bytes"], ("1000", SRC_DYNAMIC_TOPIC), "altered max.message.bytes")
    eq(cfg["retention.ms"][0], "7654321", "altered retention.ms")
    try:
        await produce_all(t, [{"value": b"y" * 2000}])
        raise Fail("2000-byte record accepted despite max.message.bytes=1000")
    except MessageSizeTooLargeError:
        pass
    await alter({"retention.ms": "7654321"})  # AlterConfigs replaces the set: max.message.bytes resets
    cfg = await describe(t)
    eq(cfg["max.message.bytes"][1], SRC_DEFAULT, "max.message.bytes source after reset")
    await produce_all(t, [{"value": b"y" * 2000}])


@scenario("admin_create_partitions")
@sync
async def admin_create_partitions():
    t = topic_name("parts")
    await create_topic_ok(t)
    async with Admin() as a:
        await a.create_partitions({t: NewPartitions(3)}, timeout_ms=TMS)
        deadline = time.monotonic() + T
        while len((await a.describe_topics([t]))[0]["partitions"]) != 3:
            check(time.monotonic() < deadline, "3 partitions never appeared in metadata")
            await asyncio.sleep(0.05)
    md = await produce_all(t, [{"value": b"p2"}], partition=2)
    eq((md[0].partition, md[0].offset), (2, 0), "partition/offset in new partition")
    eq((await consume(t, 2, 1))[0].value, b"p2", "value in new partition")


@scenario("admin_delete_topic")
@sync
async def admin_delete_topic():
    t = topic_name("delete")
    await create_topic_ok(t)
    await produce_all(t, [{"value": payload(i)} for i in range(3)])
    async with Admin() as a:
        resp = (await a.delete_topics([t], timeout_ms=TMS)).to_object()
        eq([e["error_code"] for e in resp["topic_error_codes"]], [0], "DeleteTopics error code")
        deadline = time.monotonic() + T
        while t in await a.list_topics():
            check(time.monotonic() < deadline, "deleted topic still listed")
            await asyncio.sleep(0.05)
    await create_topic_ok(t)
    eq(await watermarks(t), (0, 0), "watermarks of the re-created topic")


@scenario("delete_records")
@sync
async def delete_records():
    t = topic_name("delrec")
    await produce_all(t, [{"value": payload(i)} for i in range(10)])
    tp = TopicPartition(t, 0)
    async with Admin() as a:
        res = await a.delete_records({tp: RecordsToDelete(before_offset=4)}, timeout_ms=TMS)
    eq(res[tp], 4, "low watermark from DeleteRecords")
    eq(await watermarks(t), (4, 10), "watermarks after DeleteRecords")
    eq([r.offset for r in await consume(t, 0, 6)], list(range(4, 10)), "offsets readable")


@scenario("restart")
@sync
async def restart():
    t = topic_name("restart")
    await create_topic_ok(t, config={"retention.ms": "99999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp_ms": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    await produce_all(t, msgs)
    await asyncio.to_thread(ctl, "restart")
    eq((await describe(t))["retention.ms"][0], "99999999", "topic config after restart")
    eq(await watermarks(t), (0, 20), "watermarks after restart")
    got = await consume(t, 0, 20)
    eq([(r.key, r.value, r.timestamp, list(r.headers)) for r in got],
       [(m["key"], m["value"], m["timestamp_ms"], m["headers"]) for m in msgs], "records after restart")
    eq((await produce_all(t, [{"value": b"more"}]))[0].offset, 20, "next offset after restart")


@scenario("kill9")
@sync
async def kill9():
    t = topic_name("kill9")
    await create_topic_ok(t)
    p = await producer(enable_idempotence=True, acks="all", linger_ms=1, request_timeout_ms=10000)
    acked, failed = {}, []
    tasks = []

    async def send(i):
        v = f"m-{i}".encode()
        fut = await p.send(t, value=v, partition=0)

        async def wait():
            try:
                md = await fut
                acked[v] = md.offset
            except Exception:  # an unacknowledged message: allowed, counted
                failed.append(v)
        tasks.append(asyncio.create_task(wait()))

    i = 0
    deadline = time.monotonic() + T
    while len(acked) < 300:
        check(time.monotonic() < deadline, "300 messages not acknowledged in time")
        await send(i)
        i += 1
        await asyncio.sleep(0.001)
    kill = asyncio.create_task(asyncio.to_thread(ctl, "kill9"))
    while not kill.done():  # keep producing while the kill is under way
        await send(i)
        i += 1
        await asyncio.sleep(0.001)
    await kill
    for _ in range(200):
        await send(i)
        i += 1
    await asyncio.to_thread(ctl, "start")
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    await p.stop()
    hw = (await watermarks(t))[1]
    got = await consume(t, 0, hw) if hw else []
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
