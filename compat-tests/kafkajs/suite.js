// KafkaJS against Weir: every scenario of the matrix.
//
// KafkaJS's consumer only works through consumer groups, so records are read with
// KafkaJS's own Fetch request and RecordBatch decoder (the code path its consumer uses),
// sent to the partition leader through KafkaJS's internal cluster object: a manual
// assignment in all but name. Codecs: gzip built in, snappy via kafkajs-snappy (pure JS),
// lz4 and zstd via small codecs over lz4js (pure JS) and zstd-codec (Emscripten):
// kafkajs-lz4's lz4 package ships macOS binaries and @kafkajs/zstd's native build fails
// on Node 20, so nothing here needs a native build.
// Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set; prints RESULT lines.
'use strict'
const crypto = require('crypto')
const { execFile } = require('child_process')
const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4js = require('lz4js')
const { ZstdCodec } = require('zstd-codec')

const BOOTSTRAP = process.env.WEIR_BOOTSTRAP || '127.0.0.1:9092'
const SELECTED = (process.env.WEIR_SCENARIOS || '').split(',').filter(Boolean)
const T = 30000
const ONE_MIB = 1024 * 1024
const OLD_TS = 1600000000123
const CREATE_TIME = 0
const LOG_APPEND_TIME = 1

class NA extends Error {}
class Fail extends Error {}

const kafka = new Kafka({ clientId: 'weir-compat', brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING,
  requestTimeout: T, retry: { retries: 5, maxRetryTime: 2000 } })

// ---------------------------------------------------------------- helpers

const check = (cond, msg) => { if (!cond) throw new Fail(msg) }
const show = v => { const s = JSON.stringify(v, (k, x) => (Buffer.isBuffer(x) || x?.type === 'Buffer') ? `buf:${Buffer.from(x.data || x).toString()}` : x); return (s === undefined ? String(v) : s).slice(0, 200) }
function eq (actual, expected, what) {
  if (show(actual) !== show(expected)) throw new Fail(`${what}: expected ${show(expected)}, got ${show(actual)}`)
}
const topicName = tag => `compat-${tag}-${crypto.randomBytes(5).toString('hex')}`
const payload = i => Buffer.from(`value-${i}-`.padEnd(100, 'x'))
const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function ctl (cmd) {
  if (!process.env.WEIR_CTL) throw new NA('WEIR_CTL not set (run through compat-tests/run)')
  return new Promise((resolve, reject) => execFile(process.env.WEIR_CTL, [cmd], { timeout: 90000 },
    (err, stdout, stderr) => err ? reject(new Fail(`$WEIR_CTL ${cmd} failed: ${stdout}${stderr}`)) : resolve()))
}

async function withAdmin (fn) {
  const admin = kafka.admin()
  await admin.connect()
  try { return await fn(admin) } finally { await admin.disconnect() }
}

async function produce (topic, messages, opts = {}) {
  const { producerOpts = {}, ...sendOpts } = opts
  const p = kafka.producer({ allowAutoTopicCreation: true, ...producerOpts })
  await p.connect()
  try {
    return await p.send({ topic, messages, acks: -1, timeout: T, ...sendOpts })
  } finally {
    await p.disconnect()
  }
}

// The private cluster factory of the Kafka object (KafkaJS has no public manual-assign consumer).
const createCluster = kafka[Object.getOwnPropertySymbols(kafka).find(s => s.toString().includes('createCluster'))]

async function leaderFor (cluster, topic, partition) {
  await cluster.addTargetTopic(topic)
  await cluster.refreshMetadata()
  const pm = cluster.findTopicPartitionMetadata(topic).find(p => p.partitionId === partition)
  check(pm, `partition ${partition} of ${topic} not in metadata`)
  return cluster.findBroker({ nodeId: pm.leader })
}

// Reads exactly `count` records of topic[partition] from `start` (default: log start).
async function consume (topic, partition, count, start) {
  const cluster = createCluster({})
  await cluster.connect()
  try {
    const broker = await leaderFor(cluster, topic, partition)
    let offset = start === undefined ? Number((await listOffset(cluster, broker, topic, partition, -2))) : start
    const out = []
    const deadline = Date.now() + T
    while (out.length < count && Date.now() < deadline) {
      const resp = await broker.fetch({ replicaId: -1, isolationLevel: 1, maxWaitTime: 500, minBytes: 1, maxBytes: 16 * ONE_MIB,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 4 * ONE_MIB }] }] })
      const p = resp.responses[0].partitions[0]
      check(p.errorCode === 0, `fetch error code ${p.errorCode}`)
      for (const m of p.messages) {
        if (Number(m.offset) < offset || m.isControlRecord) continue // whole batches come back
        out.push(m)
        offset = Number(m.offset) + 1
      }
    }
    eq(out.length, count, `records consumed from ${topic}[${partition}]`)
    return out
  } finally {
    await cluster.disconnect()
  }
}

async function listOffset (cluster, broker, topic, partition, timestamp) {
  const resp = await broker.listOffsets({ replicaId: -1, isolationLevel: 1, topics: [{ topic, partitions: [{ partition, timestamp }] }] })
  const p = resp.responses[0].partitions[0]
  check(p.errorCode === 0, `ListOffsets error code ${p.errorCode}`)
  return p.offset
}

async function watermarks (topic, partition = 0) {
  const offs = await withAdmin(a => a.fetchTopicOffsets(topic))
  const p = offs.find(o => o.partition === partition)
  return [Number(p.low), Number(p.high)]
}

async function createTopic (topic, numPartitions = 1, configs = {}) {
  const created = await withAdmin(a => a.createTopics({ waitForLeaders: true, timeout: T,
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }] }))
  eq(created, true, `createTopics(${topic}) result`)
}

async function describe (name, type = ConfigResourceTypes.TOPIC) {
  const res = await withAdmin(a => a.describeConfigs({ includeSynonyms: false, resources: [{ type, name }] }))
  const r = res.resources[0]
  eq(r.errorCode, 0, 'DescribeConfigs error code')
  return Object.fromEntries(r.configEntries.map(e => [e.configName, e]))
}

const hdr = h => Object.fromEntries(Object.entries(h || {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(x => x === null ? null : x.toString()) : v === null ? null : v.toString()]))

// ---------------------------------------------------------------- codecs

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) { return Buffer.from(lz4js.compress(encoder.buffer)) },
  async decompress (buffer) { return Buffer.from(lz4js.decompress(buffer)) }
})
let zstd = null
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress (encoder) { return Buffer.from(zstd.simple.compress(encoder.buffer)) },
  async decompress (buffer) { return Buffer.from(zstd.streaming.decompress(buffer)) }
})
const zstdReady = new Promise(resolve => ZstdCodec.run(z => { zstd = { simple: new z.Simple(), streaming: new z.Streaming() }; resolve() }))

// ---------------------------------------------------------------- scenarios

const scenarios = {}

scenarios.metadata = async () => {
  const t = topicName('meta')
  const res = await produce(t, [{ value: 'hello', partition: 0 }]) // produce to an unknown topic auto-creates it
  eq([res[0].partition, res[0].baseOffset], [0, '0'], 'partition/offset of first record')
  const { brokers } = await withAdmin(a => a.describeCluster())
  eq(brokers.map(b => `${b.host}:${b.port}`), [BOOTSTRAP], 'advertised broker address')
  const md = await withAdmin(a => a.fetchTopicMetadata({ topics: [t] }))
  eq(md.topics[0].partitions.map(p => p.partitionId), [0], 'partitions of auto-created topic')
  eq(md.topics[0].partitions[0].leader, brokers[0].nodeId, 'leader')
}

for (const [name, type] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4], ['zstd', CompressionTypes.ZSTD]]) {
  scenarios[`codec_${name}`] = async () => {
    await zstdReady
    const t = topicName(`codec-${name}`)
    const n = 200
    const msgs = range(0, n).map(i => ({ key: `key-${i}`, value: payload(i), partition: 0 }))
    const res = await produce(t, msgs, { compression: type })
    eq(res[0].baseOffset, '0', 'base offset')
    const got = await consume(t, 0, n)
    eq(got.map(m => Number(m.offset)), range(0, n), 'consumed offsets')
    eq(got.map(m => m.key.toString()), msgs.map(m => m.key), 'keys')
    eq(got.map(m => m.value.toString()), msgs.map(m => m.value.toString()), 'values')
    return `${n} messages`
  }
}

scenarios.keys_headers = async () => {
  const t = topicName('keys')
  await produce(t, [
    { key: 'k1', value: 'v1', headers: { h1: ['a', 'dup'], h2: '' }, partition: 0 },
    { key: null, value: 'v2', partition: 0 },
    // KafkaJS cannot send a null header value (its encoder calls Buffer.byteLength(null)).
    { key: 'k3', value: null, headers: { h3: 'x' }, partition: 0 },
    { key: '', value: '', partition: 0 }
  ])
  const got = await consume(t, 0, 4)
  eq(got.map(m => m.key === null ? null : m.key.toString()), ['k1', null, 'k3', ''], 'keys')
  eq(got.map(m => m.value === null ? null : m.value.toString()), ['v1', 'v2', null, ''], 'values')
  eq(hdr(got[0].headers), { h1: ['a', 'dup'], h2: '' }, 'headers (repeated key h1)')
  eq(hdr(got[1].headers), {}, 'no headers')
  eq(hdr(got[2].headers), { h3: 'x' }, 'headers of a null-value record')
  return 'null header values: n/a (KafkaJS cannot encode them)'
}

scenarios.timestamp_create = async () => {
  const t = topicName('ts-create')
  await produce(t, [{ value: 'a', timestamp: String(OLD_TS), partition: 0 }, { value: 'b', timestamp: String(OLD_TS + 1), partition: 0 }])
  const got = await consume(t, 0, 2)
  eq(got.map(m => [m.batchContext.timestampType, m.timestamp]), [[CREATE_TIME, String(OLD_TS)], [CREATE_TIME, String(OLD_TS + 1)]], 'timestamps')
}

scenarios.timestamp_log_append = async () => {
  const t = topicName('ts-append')
  await createTopic(t, 1, { 'message.timestamp.type': 'LogAppendTime' })
  const before = Date.now()
  const res = await produce(t, [{ value: 'a', timestamp: String(OLD_TS), partition: 0 }])
  const after = Date.now()
  const got = await consume(t, 0, 1)
  eq(got[0].batchContext.timestampType, LOG_APPEND_TIME, 'timestamp type')
  const ts = Number(got[0].timestamp)
  check(ts >= before - 1000 && ts <= after + 1000, `LogAppendTime ${ts} not within [${before}, ${after}]`)
  eq(res[0].logAppendTime, got[0].timestamp, 'produce response logAppendTime vs consumed')
}

scenarios.large_message = async () => {
  const t = topicName('large')
  await createTopic(t, 1, { 'max.message.bytes': String(4 * ONE_MIB) })
  const big = crypto.randomBytes(ONE_MIB)
  await produce(t, [{ key: 'big', value: big, partition: 0 }, { value: 'after', partition: 0 }])
  const got = await consume(t, 0, 2)
  eq(got[0].value.length, ONE_MIB, 'size of the 1 MiB value')
  eq(crypto.createHash('sha256').update(got[0].value).digest('hex'), crypto.createHash('sha256').update(big).digest('hex'), '1 MiB value digest')
  eq(got[1].value.toString(), 'after', 'record after the large one')
}

scenarios.list_offsets = async () => {
  const t = topicName('offsets')
  await produce(t, range(0, 5).map(i => ({ value: payload(i), timestamp: String(OLD_TS + 1000 * i), partition: 0 })))
  const at = async ts => (await withAdmin(a => a.fetchTopicOffsetsByTimestamp(t, ts)))[0].offset
  eq(await at(OLD_TS - 5000), '0', 'offset before first timestamp')
  eq(await at(OLD_TS + 1500), '2', 'offset between records 1 and 2')
  eq(await at(OLD_TS + 4000), '4', 'offset for last timestamp')
  // KafkaJS maps "no such offset" (-1) to the latest offset
  eq(await at(OLD_TS + 9000), '5', 'offset after last timestamp (latest)')
  eq(await watermarks(t), [0, 5], 'earliest/latest')
}

scenarios.idempotent = async () => {
  const t = topicName('idem')
  const n = 500
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await p.connect()
  try {
    for (let i = 0; i < n; i += 50) {
      await p.send({ topic: t, acks: -1, timeout: T, messages: range(i, i + 50).map(j => ({ value: payload(j), partition: 0 })) })
    }
  } finally {
    await p.disconnect()
  }
  const got = await consume(t, 0, n)
  eq(got.map(m => m.value.toString()), range(0, n).map(i => payload(i).toString()), 'log content (each once, in order)')
  eq(await watermarks(t), [0, n], 'watermarks (no duplicates)')
}

scenarios.admin_create_topic = async () => {
  const t = topicName('create')
  await createTopic(t, 3, { 'retention.ms': '123456789', 'cleanup.policy': 'compact' })
  check((await withAdmin(a => a.listTopics())).includes(t), `${t} not listed`)
  const md = await withAdmin(a => a.fetchTopicMetadata({ topics: [t] }))
  eq(md.topics[0].partitions.map(p => p.partitionId).sort(), [0, 1, 2], 'partitions')
  const cfg = await describe(t)
  eq(cfg['retention.ms'].configValue, '123456789', 'retention.ms')
  eq(cfg['cleanup.policy'].configValue, 'compact', 'cleanup.policy')
  // KafkaJS answers false (not an error) for TOPIC_ALREADY_EXISTS
  eq(await withAdmin(a => a.createTopics({ topics: [{ topic: t }], timeout: T })), false, 'createTopics of an existing topic')
}

scenarios.admin_describe_configs = async () => {
  const t = topicName('describe')
  await createTopic(t, 1, { 'retention.ms': '86400000' })
  const cfg = await describe(t)
  eq([cfg['retention.ms'].configValue, cfg['retention.ms'].configSource, cfg['retention.ms'].isDefault], ['86400000', 1, false], 'override (value, source, isDefault)')
  eq([cfg['segment.bytes'].configValue, cfg['segment.bytes'].configSource], ['1073741824', 5], 'default segment.bytes (value, source)')
  eq(cfg['message.timestamp.type'].configValue, 'CreateTime', 'default message.timestamp.type')
  const { brokers } = await withAdmin(a => a.describeCluster())
  const bcfg = await describe(String(brokers[0].nodeId), ConfigResourceTypes.BROKER)
  eq(bcfg['num.partitions'].configValue, '1', 'broker num.partitions')
  eq(bcfg['log.dirs'].configSource, 4, 'broker log.dirs source (STATIC_BROKER_CONFIG)')
  return `${Object.keys(cfg).length} topic configs, ${Object.keys(bcfg).length} broker configs`
}

scenarios.admin_alter_configs = async () => {
  // KafkaJS has only the non-incremental AlterConfigs: the sent set replaces the topic's overrides.
  const t = topicName('alter')
  await createTopic(t)
  const alter = entries => withAdmin(a => a.alterConfigs({ validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })) }] }))
  const r = await alter({ 'max.message.bytes': '1000', 'retention.ms': '7654321' })
  eq(r.resources[0].errorCode, 0, 'AlterConfigs error code')
  let cfg = await describe(t)
  eq([cfg['max.message.bytes'].configValue, cfg['max.message.bytes'].configSource], ['1000', 1], 'altered max.message.bytes')
  eq(cfg['retention.ms'].configValue, '7654321', 'altered retention.ms')
  let err = null
  try { await produce(t, [{ value: Buffer.alloc(2000, 'y'), partition: 0 }], { producerOpts: { retry: { retries: 0 } } }) } catch (e) { err = e }
  check(err !== null, '2000-byte record accepted despite max.message.bytes=1000')
  check(/MESSAGE_TOO_LARGE|too large/i.test(`${err.type} ${err.message} ${err.originalError?.type}`), `oversized record: expected MESSAGE_TOO_LARGE, got ${err.type || err.message}`)
  await alter({ 'retention.ms': '7654321' })
  cfg = await describe(t)
  eq(cfg['max.message.bytes'].configSource, 5, 'max.message.bytes source after reset (DEFAULT_CONFIG)')
  await produce(t, [{ value: Buffer.alloc(2000, 'y'), partition: 0 }])
}

scenarios.admin_create_partitions = async () => {
  const t = topicName('parts')
  await createTopic(t)
  await withAdmin(a => a.createPartitions({ timeout: T, topicPartitions: [{ topic: t, count: 3 }] }))
  const deadline = Date.now() + T
  while ((await withAdmin(a => a.fetchTopicMetadata({ topics: [t] }))).topics[0].partitions.length !== 3) {
    check(Date.now() < deadline, '3 partitions never appeared in metadata')
    await sleep(50)
  }
  const res = await produce(t, [{ value: 'p2', partition: 2 }])
  eq([res[0].partition, res[0].baseOffset], [2, '0'], 'partition/offset in new partition')
  eq((await consume(t, 2, 1))[0].value.toString(), 'p2', 'value in new partition')
}

scenarios.admin_delete_topic = async () => {
  const t = topicName('delete')
  await createTopic(t)
  await produce(t, range(0, 3).map(i => ({ value: payload(i), partition: 0 })))
  await withAdmin(a => a.deleteTopics({ topics: [t], timeout: T }))
  const deadline = Date.now() + T
  while ((await withAdmin(a => a.listTopics())).includes(t)) {
    check(Date.now() < deadline, 'deleted topic still listed')
    await sleep(50)
  }
  await createTopic(t)
  eq(await watermarks(t), [0, 0], 'watermarks of the re-created topic')
}

scenarios.delete_records = async () => {
  const t = topicName('delrec')
  await produce(t, range(0, 10).map(i => ({ value: payload(i), partition: 0 })))
  await withAdmin(async a => {
    await a.fetchTopicMetadata({ topics: [t] }) // deleteTopicRecords needs the topic in the admin's metadata
    await a.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '4' }] })
  })
  eq(await watermarks(t), [4, 10], 'watermarks after DeleteRecords')
  eq((await consume(t, 0, 6)).map(m => Number(m.offset)), range(4, 10), 'offsets readable')
}

scenarios.restart = async () => {
  const t = topicName('restart')
  await createTopic(t, 1, { 'retention.ms': '99999999' })
  const msgs = range(0, 20).map(i => ({ key: `k${i}`, value: payload(i).toString(), timestamp: String(OLD_TS + i), headers: { i: String(i) }, partition: 0 }))
  await produce(t, msgs)
  await ctl('restart')
  eq((await describe(t))['retention.ms'].configValue, '99999999', 'topic config after restart')
  eq(await watermarks(t), [0, 20], 'watermarks after restart')
  const got = await consume(t, 0, 20)
  eq(got.map(m => [m.key.toString(), m.value.toString(), m.timestamp, hdr(m.headers)]),
    msgs.map(m => [m.key, m.value, m.timestamp, m.headers]), 'records after restart')
  eq((await produce(t, [{ value: 'more', partition: 0 }]))[0].baseOffset, '20', 'next offset after restart')
}

scenarios.kill9 = async () => {
  // KafkaJS acknowledges per send() call; each send carries 10 records. Sends are issued
  // one at a time (an idempotent KafkaJS producer is only safe that way) while the broker
  // is killed and restarted concurrently; a send in flight during the kill retries.
  const t = topicName('kill9')
  await createTopic(t)
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 30, maxRetryTime: 3000 } })
  await p.connect()
  const acked = new Map()
  let failed = 0
  let i = 0
  const sendBatch = async () => {
    const vals = range(i, i + 10).map(j => `m-${j}`)
    i += 10
    try {
      const res = await p.send({ topic: t, acks: -1, timeout: 10000, messages: vals.map(value => ({ value, partition: 0 })) })
      vals.forEach((v, k) => acked.set(v, Number(res[0].baseOffset) + k))
    } catch (e) {
      failed += vals.length
    }
  }
  const deadline = Date.now() + T
  while (acked.size < 300) {
    check(Date.now() < deadline, '300 records not acknowledged in time')
    await sendBatch()
  }
  let crashErr = null
  let crashed = false
  const crash = ctl('kill9').then(() => ctl('start')).catch(e => { crashErr = e }).finally(() => { crashed = true })
  while (!crashed) await sendBatch()
  await crash
  if (crashErr) throw crashErr
  for (let k = 0; k < 5; k++) await sendBatch()
  await p.disconnect()
  const [, hw] = await watermarks(t)
  const got = hw ? await consume(t, 0, hw) : []
  const seen = new Map()
  for (const m of got) seen.set(m.value.toString(), (seen.get(m.value.toString()) || 0) + 1)
  const missing = [...acked.keys()].filter(v => !seen.has(v))
  const dups = [...seen].filter(([, c]) => c > 1).map(([v]) => v)
  check(missing.length === 0, `${missing.length} acknowledged records lost, e.g. ${missing.slice(0, 3)}`)
  check(dups.length === 0, `${dups.length} records duplicated, e.g. ${dups.slice(0, 3)}`)
  const wrong = [...acked].filter(([v, off]) => got[off].value.toString() !== v)
  check(wrong.length === 0, `${wrong.length} acked offsets hold other records, e.g. ${wrong.slice(0, 3).map(([v, o]) => `${v}@${o}`)}`)
  return `${i} produced, ${acked.size} acked, ${failed} failed, ${hw} in log`
}

// ---------------------------------------------------------------- runner

const ORDER = ['metadata', 'codec_none', 'codec_gzip', 'codec_snappy', 'codec_lz4', 'codec_zstd',
  'keys_headers', 'timestamp_create', 'timestamp_log_append', 'large_message', 'list_offsets',
  'idempotent', 'admin_create_topic', 'admin_describe_configs', 'admin_alter_configs',
  'admin_create_partitions', 'admin_delete_topic', 'delete_records',
  'group_split', 'group_rebalance', 'group_session_timeout', 'group_cooperative',
  'group_static', 'group_commit_restart', 'group_consumer_protocol', 'group_admin',
  'compacted_topic', 'restart', 'kill9']

async function main () {
  let failed = 0
  for (const name of ORDER) {
    if (SELECTED.length && !SELECTED.includes(name)) continue
    const started = Date.now()
    let status, detail
    try {
      const timeout = sleep(150000).then(() => { throw new Fail('scenario timed out after 150s') })
      detail = (await Promise.race([scenarios[name](), timeout])) || ''
      status = 'PASS'
    } catch (e) {
      if (e instanceof NA) { status = 'NA'; detail = e.message } else {
        status = 'FAIL'
        failed++
        detail = `${e.name}: ${e.message}${e.type ? ` (${e.type})` : ''}`
        console.log(e.stack)
      }
    }
    console.log(`RESULT kafkajs ${name} ${status} ${String(detail).replace(/\n/g, ' ')} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  }
  process.exit(failed ? 1 : 0)
}

main()
