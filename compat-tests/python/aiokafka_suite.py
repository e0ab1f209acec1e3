"""aiokafka (asyncio client) against Weir: every scenario of the matrix.

aiokafka's admin client returns raw protocol responses; they are checked field by field.
Its AlterConfigs is the non-incremental one. Run by compat-tests/run with WEIR_BOOTSTRAP
and WEIR_CTL set; prints RESULT lines."""
import asyncio
import hashlib
import json
import os
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import MessageSizeTooLargeError, UnknownError
from aiokafka.protocol.admin import DeleteGroupsRequest

from common import (BOOTSTRAP, SASL_MECHANISM, aio_security, WRONG_PASSWORD, LoggedErrors, need_sasl, assigned, BROKER_ADDRS, BROKER_CODEC, REPLICATED, RF, CODECS, NA, OLD_TS, ONE_MIB, Child, Fail, check, check_split, ctl, eq,
                    group_name, spread, payload, run_all, scenario, topic_name)

CLIENT = "aiokafka"
T = 30
TMS = T * 1000
CREATE_TIME, LOG_APPEND_TIME = 0, 1
SRC_DYNAMIC_TOPIC, SRC_STATIC_BROKER, SRC_DEFAULT = 1, 4, 5
TOPIC_ALREADY_EXISTS = 36
NON_EMPTY_GROUP = 68


def sync(coro_fn):
    """Runs an async scenario in its own event loop, bounded by 150 s."""
    return lambda: asyncio.run(asyncio.wait_for(coro_fn(), 150))


class Admin:
    async def __aenter__(self):
        self.a = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **aio_security(), request_timeout_ms=TMS)
        await self.a.start()
        return self.a

    async def __aexit__(self, *exc):
        await self.a.close()


async def producer(**extra):
    # REPLICATED: acks=all on a cluster, so an acknowledged record is below the high
    # watermark and survives leader changes, as it does on one broker with acks=1.
    conf = dict(bootstrap_servers=BOOTSTRAP, **aio_security(), linger_ms=5, request_timeout_ms=TMS, **REPLICATED)
    conf.update(extra)
    p = AIOKafkaProducer(**conf)
    await p.start()
    return p


async def consumer():
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=None, enable_auto_commit=False,
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
        resp = (await a.create_topics([NewTopic(name, partitions, RF, topic_configs=config or {})],
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
        # The broker compresses: a topic whose compression.type names the codec stores
        # the uncompressed batches of this producer in it, and the consumer reads them.
        bt = topic_name(f"codec-broker-{codec}")
        await create_topic_ok(bt, config={"compression.type": BROKER_CODEC[codec]})
        await produce_all(bt, msgs, linger_ms=50)
        got = await consume(bt, 0, n)
        eq([(r.offset, r.key, r.value) for r in got],
           [(i, m["key"], m["value"]) for i, m in enumerate(msgs)], "broker-compressed records")
        return f"{n} messages; {n} more compressed by the broker ({BROKER_CODEC[codec]})"
    return sync(run)()


for _codec in CODECS:
    scenario(f"codec_{_codec}")(lambda c=_codec: codec_scenario(c))


@scenario("auth_refused")
@sync
async def auth_refused():
    need_sasl()
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
    # aiokafka logs why a bootstrap address failed and raises a generic connection error.
    with LoggedErrors("aiokafka", SaslAuthenticationFailed) as seen:
        p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, **aio_security(WRONG_PASSWORD), request_timeout_ms=TMS)
        try:
            await p.start()
            await p.stop()
            raise Fail("the producer started with a wrong password")
        except KafkaConnectionError:
            pass
    ok = await producer()  # the right password still works
    await ok.stop()
    if SASL_MECHANISM == "OAUTHBEARER" and not seen.errors:
        # aiokafka 0.14 takes the broker's error challenge ({"status":"invalid_token"},
        # which Apache Kafka sends too) for success: OAuthAuthenticator.step in its
        # conn.py never reads the answer. The refusal then shows as the broker closing
        # the connection at the next request, and the start above failed on it.
        return "refused: the connection closed after the broker's invalid_token challenge"
    check(seen.errors, "no SaslAuthenticationFailed with a wrong password")
    return str(seen.errors[0])[:160]


@scenario("metadata")
@sync
async def metadata():
    t = topic_name("meta")
    md = await produce_all(t, [{"value": b"hello"}])  # produce to an unknown topic auto-creates it
    eq(md[0].offset, 0, "first offset")
    async with Admin() as a:
        cluster = await a.describe_cluster()
        topics = await a.describe_topics([t])
    eq(sorted(f"{b['host']}:{b['port']}" for b in cluster["brokers"]), BROKER_ADDRS, "advertised broker addresses")
    eq([p["partition"] for p in topics[0]["partitions"]], [0], "partitions of auto-created topic")
    p0 = topics[0]["partitions"][0]
    check(p0["leader"] in [b["node_id"] for b in cluster["brokers"]], f"leader {p0['leader']} is no broker")
    eq(len(p0["replicas"]), RF, "replicas of auto-created topic (default.replication.factor)")


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


# ---------------------------------------------------------------- consumer groups

HB_MS = 500  # heartbeat_interval_ms of group members: rebalances are noticed quickly


async def await_for(pred, timeout, what, interval=0.05):
    """wait_for for the event loop: polls pred() (sync) without blocking other tasks."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        await asyncio.sleep(interval)
    raise Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})"[:300])


class _Listener(ConsumerRebalanceListener):
    def __init__(self, member):
        self.m = member

    async def on_partitions_revoked(self, revoked):
        self.m.assigned -= {tp.partition for tp in revoked}
        self.m.events.append(("revoke", sorted(tp.partition for tp in revoked)))

    async def on_partitions_assigned(self, assigned):
        self.m.assigned |= {tp.partition for tp in assigned}
        self.m.events.append(("assign", sorted(tp.partition for tp in assigned)))


class Member:
    """One group consumer driven by its own task. Auto-commit is on: aiokafka commits what
    getmany() returned before every rebalance and on stop()."""

    def __init__(self, group, topic, **extra):
        self.conf = dict(bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=True, auto_commit_interval_ms=1000,
                         session_timeout_ms=10000, heartbeat_interval_ms=HB_MS)
        self.conf.update(extra)
        self.topic = topic
        self.assigned, self.events, self.msgs, self.errors = set(), [], [], []
        self.stopping = False
        self.subscribed_at = None
        self.task = None

    async def start(self):
        self.task = asyncio.ensure_future(self._run())
        await await_for(lambda: self.subscribed_at or self.errors, T, "subscribe")
        if self.errors:
            raise Fail(f"member failed to start: {self.errors[0]}")
        return self.subscribed_at

    async def _run(self):
        try:
            c = AIOKafkaConsumer(**self.conf)
            await c.start()
            c.subscribe([self.topic], listener=_Listener(self))
            self.subscribed_at = time.monotonic()
            try:
                while not self.stopping:
                    for recs in (await c.getmany(timeout_ms=100)).values():
                        self.msgs.extend((r.partition, r.offset, r.key, r.value) for r in recs)
            finally:
                await c.stop()  # commits and leaves (a static member does not leave)
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")

    def owned(self):
        return frozenset(self.assigned)

    def values(self):
        return [m[3] for m in self.msgs]

    async def close(self):
        if self.task and not self.task.done():
            self.stopping = True
            await asyncio.wait_for(self.task, T)


async def close_all(members):
    for m in members:
        try:
            await m.close()
        except Exception:
            pass


async def wait_assigned(members, sizes, partitions, timeout=T, what="assignment"):
    try:
        await await_for(lambda: assigned(members, sizes, partitions, what), timeout, f"{what} {sizes}")
    except Fail as e:
        raise Fail(f"{e}; members own {[sorted(m.owned()) for m in members]}") from None
    return time.monotonic()


async def produce_spread(topic, n, partitions, tag="m"):
    p = await producer()
    msgs = spread(n, partitions, tag)
    try:
        futs = [await p.send(topic, key=k, value=v, partition=part) for k, v, part in msgs]
        for f in futs:
            await asyncio.wait_for(f, T)
    finally:
        await p.stop()
    return [v for _, v, _ in msgs]


@scenario("group_split")
@sync
async def group_split():
    t, g = topic_name("split"), group_name("split")
    await create_topic_ok(t, partitions=12)
    n = 1200
    values = await produce_spread(t, n, 12)
    ms = [Member(g, t) for _ in range(3)]
    try:
        await ms[0].start()
        await ms[1].start()
        await wait_assigned(ms[:2], [6, 6], 12, what="2 members")
        t0 = await ms[2].start()
        t1 = await wait_assigned(ms, [4, 4, 4], 12, what="3 members")
        await await_for(lambda: sum(len(m.msgs) for m in ms) >= n, T, f"{n} messages consumed")
        await asyncio.sleep(1)
        got = [v for m in ms for v in m.values()]
        dups = len(got) - len(set(got))
        check(dups == 0, f"{dups} messages consumed twice")
        eq(sorted(got), sorted(values), "messages consumed by the group")
        await wait_assigned(ms, [4, 4, 4], 12, what="final assignment")
        return f"3 members, rebalance {t1 - t0:.1f}s, {n} messages once each"
    finally:
        await close_all(ms)


@scenario("group_rebalance")
@sync
async def group_rebalance():
    t, g = topic_name("rebal"), group_name("rebal")
    await create_topic_ok(t, partitions=12)
    values = set(await produce_spread(t, 600, 12, "pre"))
    ms = [Member(g, t) for _ in range(4)]
    produced = []
    stop = asyncio.Event()

    async def produce_loop():
        p = await producer()
        try:
            i, futs = 0, []
            while not stop.is_set():
                v = f"during-{i}".encode()
                futs.append((v, await p.send(t, key=v, value=v, partition=i % 12)))
                await asyncio.sleep(0.01)
                i += 1
            for v, f in futs:
                await asyncio.wait_for(f, T)
                produced.append(v)
        finally:
            await p.stop()

    prod = None
    try:
        for m in ms[:3]:
            await m.start()
        await wait_assigned(ms[:3], [4, 4, 4], 12, what="3 members")
        prod = asyncio.ensure_future(produce_loop())
        t0 = await ms[3].start()
        t1 = await wait_assigned(ms, [3, 3, 3, 3], 12, what="4 members")
        await ms[1].close()
        t2 = time.monotonic()
        t3 = await wait_assigned([ms[0], ms[2], ms[3]], [4, 4, 4], 12, what="after a member left")
        stop.set()
        await asyncio.wait_for(prod, T)
        check(produced, "nothing produced during the rebalances")
        values |= set(produced)
        await await_for(lambda: values <= {v for m in ms for v in m.values()}, T,
                        f"all {len(values)} messages consumed")
        total = sum(len(m.msgs) for m in ms)
        return (f"join rebalance {t1 - t0:.1f}s, leave rebalance {t3 - t2:.1f}s, {len(values)} messages, "
                f"{total - len(values)} redelivered")
    finally:
        stop.set()
        await close_all(ms)


CHILD_MEMBER = r"""
import asyncio, json, sys
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from common import aio_security
conf, topic = json.loads(sys.argv[1]), sys.argv[2]
# An SSLContext does not travel as JSON: the child makes its own from the suite's env.
conf.update(aio_security())
owned = set()
def show():
    print("ASSIGNED " + ",".join(str(p) for p in sorted(owned)), flush=True)
class L(ConsumerRebalanceListener):
    async def on_partitions_revoked(self, tps):
        owned.difference_update(tp.partition for tp in tps); show()
    async def on_partitions_assigned(self, tps):
        owned.update(tp.partition for tp in tps); show()
async def main():
    c = AIOKafkaConsumer(**conf)
    await c.start()
    c.subscribe([topic], listener=L())
    while True:
        await c.getmany(timeout_ms=200)
asyncio.run(main())
"""


def child_owned(child):
    line = child.last("ASSIGNED ")
    return None if line is None else frozenset(int(x) for x in line.split(",") if x)


@scenario("group_session_timeout")
@sync
async def group_session_timeout():
    t, g = topic_name("session"), group_name("session")
    await create_topic_ok(t, partitions=6)
    session_ms = 6000
    # The child member's settings (it adds TLS itself).
    conf = dict(bootstrap_servers=BOOTSTRAP, group_id=g, auto_offset_reset="earliest",
                session_timeout_ms=session_ms, heartbeat_interval_ms=HB_MS)
    a = Member(g, t, session_timeout_ms=session_ms)
    child = None
    try:
        await a.start()
        await wait_assigned([a], [6], 6, what="first member")
        child = Child(CHILD_MEMBER, json.dumps(conf), t)
        await await_for(lambda: (lambda o: o is not None and len(o) == 3 and len(a.owned()) == 3)(child_owned(child)),
                        T, "3 + 3 partitions")
        check_split([a.owned(), child_owned(child)], 6, "two members")
        child.kill()
        t0 = time.monotonic()
        t1 = await wait_assigned([a], [6], 6, timeout=session_ms / 1000 + 5,
                                 what="partitions of the killed member moved")
        took = t1 - t0
        check(took >= session_ms / 1000 - HB_MS / 1000 - 1.5,
              f"partitions moved after {took:.1f}s, before the {session_ms} ms session timeout could expire")
        return f"killed member's partitions moved after {took:.1f}s (session_timeout_ms={session_ms})"
    finally:
        if child:
            child.kill()
        await close_all([a])


@scenario("group_cooperative")
def group_cooperative():
    raise NA("aiokafka 0.14 has only EAGER assignors (range, roundrobin, sticky); "
             "no cooperative-sticky / incremental rebalance protocol")


@scenario("group_static")
@sync
async def group_static():
    t, g = topic_name("static"), group_name("static")
    await create_topic_ok(t, partitions=6)
    a = Member(g, t, group_instance_id="static-a")
    b = Member(g, t, group_instance_id="static-b")
    b2 = Member(g, t, group_instance_id="static-b")
    try:
        await a.start()
        await wait_assigned([a], [6], 6, what="first member")
        await b.start()
        await wait_assigned([a, b], [3, 3], 6, what="two static members")
        a_owned, b_owned = a.owned(), b.owned()
        a_events = list(a.events)
        await b.close()  # a static member does not send LeaveGroup
        t0 = time.monotonic()
        await b2.start()
        await wait_assigned([a, b2], [3, 3], 6, what="B restarted")
        took = time.monotonic() - t0
        eq(b2.owned(), b_owned, "partitions of the restarted static member")
        await asyncio.sleep(3 * HB_MS / 1000 + 1)
        eq(a.events, a_events, "A's rebalance callbacks after B's restart (no rebalance)")
        eq(a.owned(), a_owned, "A's partitions")
        return f"B back with {sorted(b_owned)} after {took:.1f}s, no rebalance"
    finally:
        await close_all([a, b, b2])


@scenario("group_commit_restart")
@sync
async def group_commit_restart():
    t, g = topic_name("commit"), group_name("commit")
    await create_topic_ok(t, partitions=3)
    n = 90
    values = await produce_spread(t, n, 3)
    conf = dict(bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=g, auto_offset_reset="earliest",
                enable_auto_commit=False)
    c = AIOKafkaConsumer(**conf)
    await c.start()
    pos, got = {}, 0
    try:
        c.subscribe([t])
        deadline = time.monotonic() + T
        while got < 40 and time.monotonic() < deadline:
            for recs in (await c.getmany(timeout_ms=200, max_records=40 - got)).values():
                for r in recs:
                    pos[r.partition] = r.offset + 1
                    got += 1
        eq(got, 40, "messages consumed before the commit")
        await c.commit({TopicPartition(t, p): o for p, o in pos.items()})
    finally:
        await c.stop()
    ctl("restart")
    c = AIOKafkaConsumer(**conf)
    await c.start()
    try:
        committed = {p: await c.committed(TopicPartition(t, p)) for p in range(3)}
        eq(committed, {p: pos.get(p) for p in range(3)}, "committed offsets after broker restart")
        c.subscribe([t])
        first, seen = {}, []
        deadline = time.monotonic() + T
        while len(seen) < n - 40 and time.monotonic() < deadline:
            for recs in (await c.getmany(timeout_ms=200)).values():
                for r in recs:
                    first.setdefault(r.partition, r.offset)
                    seen.append(r.value)
        eq(first, {p: pos.get(p, 0) for p in range(3) if pos.get(p, 0) < n // 3},
           "first offset consumed per partition after restart")
        eq(len(seen), n - 40, "messages consumed after restart")
        check(set(seen) <= set(values), "unexpected values")
        return f"resumed at {dict(sorted(pos.items()))}"
    finally:
        await c.stop()


@scenario("group_consumer_protocol")
def group_consumer_protocol():
    raise NA("aiokafka 0.14 implements only the classic group protocol "
             "(no group_protocol setting, no ConsumerGroupHeartbeat)")


@scenario("group_admin")
@sync
async def group_admin():
    t, g = topic_name("gadmin"), group_name("gadmin")
    await create_topic_ok(t, partitions=2)
    await produce_spread(t, 20, 2)
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=g, auto_offset_reset="earliest",
                         enable_auto_commit=False)
    await c.start()
    stopped = False
    try:
        c.subscribe([t])
        got, deadline = 0, time.monotonic() + T
        while got < 20 and time.monotonic() < deadline:
            got += sum(len(r) for r in (await c.getmany(timeout_ms=200)).values())
        eq(got, 20, "messages consumed")
        await c.commit()
        async with Admin() as a:
            groups = await a.list_consumer_groups()
            eq([x for x in groups if x[0] == g], [(g, "consumer")], "ListGroups entry (id, protocol type)")
            desc = (await a.describe_consumer_groups([g]))[0].to_object()["groups"][0]
            eq(desc["error_code"], 0, "DescribeGroups error")
            eq(desc["state"], "Stable", "described state")
            eq(desc["protocol"], "roundrobin", "assignor")
            eq(len(desc["members"]), 1, "described members")
            check(desc["members"][0]["member_assignment"], "empty member assignment")

            async def offsets():
                res = await a.list_consumer_group_offsets(g)
                return {tp.partition: om.offset for tp, om in res.items()}

            eq(await offsets(), {0: 10, 1: 10}, "listed committed offsets")
            node = await a.find_coordinator(g)
            delete = lambda: a._send_request(DeleteGroupsRequest([g]), node)
            eq((await delete()).results, [(g, NON_EMPTY_GROUP)], "DeleteGroups of a non-empty group")
            await c.stop()
            stopped = True
            eq((await delete()).results, [(g, 0)], "DeleteGroups of the empty group")
            groups = await a.list_consumer_groups()
            check(g not in [x[0] for x in groups], "deleted group still listed")
            eq(await offsets(), {}, "offsets of the deleted group")
        return "list, describe, list offsets, delete (NON_EMPTY_GROUP, then ok); alter/delete offsets: no API"
    finally:
        if not stopped:
            await c.stop()


async def read_all(topic, partition=0):
    lo, hi = await watermarks(topic, partition)
    if hi == lo:
        return []
    c = await consumer()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + T
        while (not out or out[-1].offset < hi - 1) and time.monotonic() < deadline:
            for recs in (await c.getmany(tp, timeout_ms=500)).values():
                out.extend(recs)
        check(out and out[-1].offset >= hi - 1, f"read up to {hi} timed out")
        return out
    finally:
        await c.stop()


@scenario("compacted_topic")
@sync
async def compacted_topic():
    t = topic_name("compact")
    await create_topic_ok(t, config={"cleanup.policy": "compact", "segment.ms": "100",
                                     "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"})
    try:
        await produce_all(t, [{"value": b"no key"}])
        raise Fail("keyless record accepted by a compacted topic")
    except Fail:
        raise
    except UnknownError:
        pass  # aiokafka 0.14 has no class for INVALID_RECORD (87): it raises UnknownError

    keys = [f"key{k}" for k in range(5)]
    msgs = [{"key": k.encode(), "value": f"{k}-v{r}".encode()} for r in range(4) for k in keys]
    msgs.append({"key": b"key1", "value": None})  # tombstone
    md = await produce_all(t, msgs)
    last = {}
    for m, r in zip(msgs, md):
        last[m["key"]] = (r.offset, m["value"])
    tomb_off = last.pop(b"key1")[0]
    tick = await producer()
    seen_tombstone_alone, state = False, None
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() < t0 + 60:
            await tick.send_and_wait(t, key=b"tick", value=str(i).encode(), partition=0)  # rolls segments
            i += 1
            recs = await read_all(t)
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
                        f"{'seen then ' if seen_tombstone_alone else ''}removed; keyless record refused (UnknownError: aiokafka lacks code 87)")
            await asyncio.sleep(0.5)
    finally:
        await tick.stop()
    raise Fail(f"not compacted after 60s: {str(state)[:250]}")


async def read_isolated(topic, partitions, isolation):
    """(partition, value) of every record a consumer with `isolation` reads to the end."""
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=None,
                         enable_auto_commit=False, isolation_level=isolation, request_timeout_ms=TMS)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)  # the LSO for read_committed
        out = []
        deadline = time.monotonic() + T
        while any([await c.position(tp) < ends[tp] for tp in tps]) and time.monotonic() < deadline:
            for recs in (await c.getmany(*tps, timeout_ms=500)).values():
                out.extend((r.partition, r.offset, r.value) for r in recs)
        check(all([await c.position(tp) >= ends[tp] for tp in tps]), f"{topic} read to its end")
        return [(p, v) for p, _, v in sorted(out)]
    finally:
        await c.stop()


@scenario("transactions")
@sync
async def transactions():
    from aiokafka.errors import ProducerFenced
    t = topic_name("txn")
    await create_topic_ok(t, partitions=2)
    txn_id = f"compat-{CLIENT}-{t}"
    p = await producer(transactional_id=txn_id)
    try:
        for tag, commit in (("c1", True), ("a", False), ("c2", True)):
            await p.begin_transaction()
            for part in (0, 1):
                await (await p.send(t, value=f"{tag}-{part}".encode(), partition=part))
            if commit:
                await p.commit_transaction()
            else:
                await p.abort_transaction()
        committed = await read_isolated(t, 2, "read_committed")
        eq(committed, [(0, b"c1-0"), (0, b"c2-0"), (1, b"c1-1"), (1, b"c2-1")],
           "read_committed sees the committed transactions only")
        eq(len(await read_isolated(t, 2, "read_uncommitted")), 6,
           "read_uncommitted sees the aborted records too")
        p2 = await producer(transactional_id=txn_id)
        try:
            await p.begin_transaction()
            try:
                await (await p.send(t, value=b"zombie", partition=0))
                await p.commit_transaction()
                raise Fail("the fenced producer committed")
            except ProducerFenced:
                pass
            async with p2.transaction():
                await (await p2.send(t, value=b"live", partition=0))
        finally:
            await p2.stop()
    finally:
        await p.stop()
    committed = await read_isolated(t, 2, "read_committed")
    eq([v for part, v in committed if part == 0], [b"c1-0", b"c2-0", b"live"],
       "after fencing: the new instance's commit only")
    return "commit, abort, commit; fenced by a second instance (ProducerFenced)"


@scenario("txn_offsets")
@sync
async def txn_offsets():
    src, dst = topic_name("txn-in"), topic_name("txn-out")
    await create_topic_ok(src)
    await create_topic_ok(dst)
    await produce_all(src, [{"value": f"m{i}".encode()} for i in range(6)])
    g = group_name("txn")
    c = AIOKafkaConsumer(src, bootstrap_servers=BOOTSTRAP, **aio_security(), group_id=g,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         isolation_level="read_committed", request_timeout_ms=TMS)
    await c.start()
    p = await producer(transactional_id=f"compat-{CLIENT}-{g}")
    try:
        tp = TopicPartition(src, 0)
        for commit in (True, False):
            got = []
            deadline = time.monotonic() + T
            while len(got) < 3 and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500, max_records=3 - len(got))).values():
                    got.extend(recs)
            eq(len(got), 3, "input records read")
            await p.begin_transaction()
            for r in got:
                await (await p.send(dst, value=r.value + b"-out", partition=0))
            await p.send_offsets_to_transaction({tp: got[-1].offset + 1}, g)
            if commit:
                await p.commit_transaction()
            else:
                await p.abort_transaction()
        eq(await c.committed(tp), 3, "the group's offset is the committed transaction's")
    finally:
        await c.stop()
        await p.stop()
    out = await read_isolated(dst, 1, "read_committed")
    eq([v for _, v in out], [b"m0-out", b"m1-out", b"m2-out"], "output of the committed transaction")
    return "offsets committed with the transaction, dropped with the aborted one"


@scenario("restart")
@sync
async def restart():
    t = topic_name("restart")
    await create_topic_ok(t, config={"retention.ms": "999999999999"})
    msgs = [{"key": f"k{i}".encode(), "value": payload(i), "timestamp_ms": OLD_TS + i,
             "headers": [("i", str(i).encode())]} for i in range(20)]
    await produce_all(t, msgs)
    await asyncio.to_thread(ctl, "restart")
    eq((await describe(t))["retention.ms"][0], "999999999999", "topic config after restart")
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
    kill = asyncio.create_task(asyncio.to_thread(ctl, "kill9", t))  # cluster: kill t/0's leader
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
