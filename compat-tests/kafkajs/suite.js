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
// Every broker's host:port (compat-tests/run --cluster N lists all N), sorted, and the
// replication factor topics are created with (the cluster run's default.replication.factor).
const BROKER_ADDRS = BOOTSTRAP.split(',').sort()
const RF = Math.min(BROKER_ADDRS.length, 3)
const SELECTED = (process.env.WEIR_SCENARIOS || '').split(',').filter(Boolean)
const T = 30000
const ONE_MIB = 1024 * 1024
const OLD_TS = 1600000000123
const CREATE_TIME = 0
const LOG_APPEND_TIME = 1

class NA extends Error {}
class Fail extends Error {}

// TLS (compat-tests/run --security ssl|mtls): the CA, and the client's certificate for
// mutual TLS, as a KafkaJS user passes them.
const fs = require('fs')
const ssl = process.env.WEIR_SSL_CA
  ? {
      ca: [fs.readFileSync(process.env.WEIR_SSL_CA)],
      ...(process.env.WEIR_SSL_CERT
        ? { cert: fs.readFileSync(process.env.WEIR_SSL_CERT), key: fs.readFileSync(process.env.WEIR_SSL_KEY) }
        : {})
    }
  : undefined
// SASL (compat-tests/run --security sasl_plaintext|sasl_ssl): KafkaJS's mechanism names are
// lower case. OAUTHBEARER tokens come from the runner's identity provider (client-credentials
// grant, user and password as client id and secret) through KafkaJS's oauthBearerProvider.
const fetchToken = async password => {
  const basic = Buffer.from(`${process.env.WEIR_SASL_USERNAME}:${password}`).toString('base64')
  const res = await fetch(process.env.WEIR_OAUTH_TOKEN_URL, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials'
  })
  if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status}`)
  return { value: (await res.json()).access_token }
}
const sasl = password => {
  const mechanism = process.env.WEIR_SASL_MECHANISM
  if (!mechanism) return undefined
  if (mechanism === 'OAUTHBEARER') return { mechanism: 'oauthbearer', oauthBearerProvider: () => fetchToken(password) }
  return { mechanism: mechanism.toLowerCase(), username: process.env.WEIR_SASL_USERNAME, password }
}
const kafka = new Kafka({ clientId: 'weir-compat', brokers: BROKER_ADDRS, logLevel: logLevel.NOTHING,
  requestTimeout: T, retry: { retries: 5, maxRetryTime: 2000 }, ssl, sasl: sasl(process.env.WEIR_SASL_PASSWORD) })

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

function ctl (cmd, ...args) { // kill9 takes a topic: on a cluster its partition 0 leader is killed
  if (!process.env.WEIR_CTL) throw new NA('WEIR_CTL not set (run through compat-tests/run)')
  return new Promise((resolve, reject) => execFile(process.env.WEIR_CTL, [cmd, ...args], { timeout: 90000 },
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
    topics: [{ topic, numPartitions, replicationFactor: RF, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }] }))
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

scenarios.auth_refused = async () => {
  if (!process.env.WEIR_SASL_MECHANISM) throw new NA('the listener does not authenticate clients (no SASL in this mode)')
  const wrong = new Kafka({ clientId: 'weir-compat-wrong', brokers: BROKER_ADDRS, logLevel: logLevel.NOTHING,
    requestTimeout: T, retry: { retries: 0 }, ssl, sasl: sasl('not-the-password') })
  const admin = wrong.admin()
  const oauth = process.env.WEIR_SASL_MECHANISM === 'OAUTHBEARER'
  let err
  try {
    await admin.connect()
    // KafkaJS 2.2 takes the broker's OAUTHBEARER error challenge ({"status":"invalid_token"},
    // which Apache Kafka sends too) for success: its saslAuthenticator/oauthBearer.js never
    // reads the answer. The refusal then shows at the first request, when the broker
    // closes the connection.
    if (oauth) await admin.describeCluster()
  } catch (e) {
    err = e
  } finally {
    await admin.disconnect()
  }
  check(err, 'the admin client connected with a wrong password')
  if (oauth && err.name !== 'KafkaJSSASLAuthenticationError' && err.cause?.name !== 'KafkaJSSASLAuthenticationError') {
    check(/closed|ECONNRESET|Connection error|disconnected/i.test(`${err.name} ${err.message} ${err.cause?.message ?? ''}`),
      `expected the connection to close after the refused token, got ${err.name}: ${err.message}`)
    await withAdmin(a => a.describeCluster()) // the right credentials still work
    return `refused: ${err.name}: ${err.message}`.slice(0, 160)
  }
  check(err.name === 'KafkaJSSASLAuthenticationError' || err.cause?.name === 'KafkaJSSASLAuthenticationError',
    `expected KafkaJSSASLAuthenticationError, got ${err.name}: ${err.message}`)
  await withAdmin(a => a.describeCluster()) // the right password still works
  return err.message.slice(0, 160)
}

scenarios.metadata = async () => {
  const t = topicName('meta')
  const res = await produce(t, [{ value: 'hello', partition: 0 }]) // produce to an unknown topic auto-creates it
  eq([res[0].partition, res[0].baseOffset], [0, '0'], 'partition/offset of first record')
  const { brokers } = await withAdmin(a => a.describeCluster())
  eq(brokers.map(b => `${b.host}:${b.port}`).sort(), BROKER_ADDRS, 'advertised broker addresses')
  const md = await withAdmin(a => a.fetchTopicMetadata({ topics: [t] }))
  eq(md.topics[0].partitions.map(p => p.partitionId), [0], 'partitions of auto-created topic')
  const p0 = md.topics[0].partitions[0]
  check(brokers.some(b => b.nodeId === p0.leader), `leader ${p0.leader} is no broker`)
  eq(p0.replicas.length, RF, 'replicas of auto-created topic (default.replication.factor)')
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
    // The broker compresses: a topic whose compression.type names the codec stores the
    // uncompressed batches of this producer in it, and the consumer reads them back.
    const brokerCodec = name === 'none' ? 'uncompressed' : name
    const bt = topicName(`codec-broker-${name}`)
    await createTopic(bt, 1, { 'compression.type': brokerCodec })
    await produce(bt, msgs)
    const back = await consume(bt, 0, n)
    eq(back.map(m => [Number(m.offset), m.key.toString(), m.value.toString()]),
      msgs.map((m, i) => [i, m.key, m.value.toString()]), 'broker-compressed records')
    return `${n} messages; ${n} more compressed by the broker (${brokerCodec})`
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
  await createTopic(t, 1, { 'retention.ms': '999999999999' })
  const msgs = range(0, 20).map(i => ({ key: `k${i}`, value: payload(i).toString(), timestamp: String(OLD_TS + i), headers: { i: String(i) }, partition: 0 }))
  await produce(t, msgs)
  await ctl('restart')
  eq((await describe(t))['retention.ms'].configValue, '999999999999', 'topic config after restart')
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
  const crash = ctl('kill9', t).then(() => ctl('start')).catch(e => { crashErr = e }).finally(() => { crashed = true })
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

// ---------------------------------------------------------------- consumer groups

async function waitFor (cond, ms, what) {
  const started = Date.now()
  while (!(await cond())) {
    if (Date.now() - started > ms) throw new Fail(`${what}: not reached after ${(ms / 1000).toFixed(0)}s`)
    await sleep(50)
  }
  return Date.now() - started
}

// A group member: its current assignment of `topic` (from GROUP_JOIN) and what it consumed.
async function groupMember (groupId, topic, opts = {}) {
  const c = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 20000, heartbeatInterval: 500,
    maxWaitTimeInMs: 500, retry: { retries: 10 }, ...opts })
  const m = { c, assigned: [], joins: 0, msgs: [] }
  c.on(c.events.GROUP_JOIN, e => {
    m.assigned = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    m.joins++
  })
  await c.connect()
  await c.subscribe({ topics: [topic], fromBeginning: true })
  await c.run({ eachMessage: async ({ partition, message }) => { m.msgs.push({ partition, offset: Number(message.offset), value: message.value?.toString() }) } })
  return m
}

// Every member holds `each` partitions, disjoint, covering 0..n.
function balanced (ms, n, each, extra = []) {
  const all = ms.flatMap(m => m.assigned).concat(extra).sort((a, b) => a - b)
  return ms.every(m => m.assigned.length === each) && show(all) === show(range(0, n))
}
const assignments = ms => show(ms.map(m => m.assigned))
const distinct = ms => new Set(ms.flatMap(m => m.msgs.map(x => `${x.partition}:${x.offset}`))).size

async function waitBalanced (ms, n, each, what, ms_ = T) {
  try {
    return await waitFor(() => balanced(ms, n, each), ms_, what)
  } catch (e) { throw new Fail(`${e.message}; assignments ${assignments(ms)}`) }
}

async function produceKeyed (topic, n, per, from = 0) {
  await produce(topic, range(0, n).flatMap(p => range(from, from + per).map(i => ({ key: `k${p}-${i}`, value: `v${p}-${i}`, partition: p }))))
  return n * per
}

async function stopAll (ms) { for (const m of ms) await m.c.disconnect() }

scenarios.group_split = async () => {
  const t = topicName('gsplit')
  const g = `${t}-g`
  await createTopic(t, 12)
  const per = 25
  const n = await produceKeyed(t, 12, per)
  const ms = []
  try {
    ms.push(await groupMember(g, t))
    await waitBalanced(ms, 12, 12, 'first member holds all 12')
    ms.push(await groupMember(g, t))
    await waitBalanced(ms, 12, 6, '2 members hold 6 each')
    const third = Date.now()
    ms.push(await groupMember(g, t))
    await waitBalanced(ms, 12, 4, '3 members hold 4 each')
    const took = Date.now() - third
    await produceKeyed(t, 12, per, per) // a second half once the group is stable
    await waitFor(() => distinct(ms) >= 2 * n, T, `all ${2 * n} messages consumed (got ${distinct(ms)})`)
    await sleep(1000) // late duplicates show up
    const seen = new Map()
    for (const x of ms.flatMap(m => m.msgs)) seen.set(`${x.partition}:${x.offset}`, (seen.get(`${x.partition}:${x.offset}`) || 0) + 1)
    const dups = [...seen].filter(([, c]) => c > 1).map(([k]) => k)
    check(dups.length === 0, `${dups.length} messages consumed twice, e.g. ${dups.slice(0, 3)}`)
    const missing = range(0, 12).flatMap(p => range(0, 2 * per).map(o => `${p}:${o}`)).filter(k => !seen.has(k))
    check(missing.length === 0, `${missing.length} messages never consumed, e.g. ${missing.slice(0, 3)}`)
    check(balanced(ms, 12, 4), `assignment changed after the rebalance: ${assignments(ms)}`)
    return `3 members, rebalance ${(took / 1000).toFixed(1)}s; ${2 * n} messages once each (per member ${show(ms.map(m => m.msgs.length))})`
  } finally { await stopAll(ms) }
}

scenarios.group_rebalance = async () => {
  const t = topicName('greb')
  const g = `${t}-g`
  await createTopic(t, 12)
  const ms = []
  const p = kafka.producer()
  await p.connect()
  let producing = true
  let produced = 0
  let prodErr = null
  const producer = (async () => {
    while (producing) {
      try {
        await p.send({ topic: t, acks: -1, timeout: T, messages: [{ value: `live-${produced}`, partition: produced % 12 }] })
        produced++
      } catch (e) { prodErr = e; return }
      await sleep(50)
    }
  })()
  try {
    for (let i = 0; i < 3; i++) ms.push(await groupMember(g, t))
    await waitBalanced(ms, 12, 4, '3 members hold 4 each')
    let started = Date.now()
    ms.push(await groupMember(g, t))
    await waitBalanced(ms, 12, 3, '4 members hold 3 each')
    const join = Date.now() - started
    const leaver = ms.splice(1, 1)[0]
    started = Date.now()
    await leaver.c.disconnect() // LeaveGroup
    await waitBalanced(ms, 12, 4, '3 members hold 4 each after a clean leave')
    const leave = Date.now() - started
    await sleep(1000)
    producing = false
    await producer
    if (prodErr) throw prodErr
    const got = () => new Set(ms.concat([leaver]).flatMap(m => m.msgs.map(x => x.value)))
    const missing = () => range(0, produced).filter(i => !got().has(`live-${i}`))
    try { await waitFor(() => missing().length === 0, T, 'every message produced during the changes consumed') } catch (e) {
      throw new Fail(`${e.message}: ${missing().length} of ${produced} missing, e.g. ${missing().slice(0, 3)}`)
    }
    check(balanced(ms, 12, 4), `assignment changed at the end: ${assignments(ms)}`)
    return `join: 4x3 after ${(join / 1000).toFixed(1)}s; leave: 3x4 after ${(leave / 1000).toFixed(1)}s; ${produced} produced meanwhile, all consumed`
  } finally {
    producing = false
    await producer
    await p.disconnect()
    await stopAll(ms)
  }
}

// The child-process member of group_session_timeout: prints `ASSIGNED p,p,...` on each assignment.
async function childMember ([topic, groupId]) {
  const m = await groupMember(groupId, topic, { sessionTimeout: 6000 })
  m.c.on(m.c.events.GROUP_JOIN, () => console.log(`ASSIGNED ${m.assigned.join(',')}`))
  if (m.joins) console.log(`ASSIGNED ${m.assigned.join(',')}`)
}

scenarios.group_session_timeout = async () => {
  const t = topicName('gsess')
  const g = `${t}-g`
  await createTopic(t, 12)
  const { spawn } = require('child_process')
  const child = spawn(process.execPath, [__filename, '--child-member', t, g], { stdio: ['ignore', 'pipe', 'ignore'] })
  let childParts = []
  let buf = ''
  child.stdout.on('data', d => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith('ASSIGNED')) childParts = line.slice(9).split(',').filter(Boolean).map(Number)
    }
  })
  const ms = []
  try {
    await waitFor(() => childParts.length === 12, T, 'child member holds all 12')
    for (let i = 0; i < 2; i++) ms.push(await groupMember(g, t, { sessionTimeout: 6000 }))
    await waitFor(() => childParts.length === 4 && balanced(ms, 12, 4, childParts), T,
      '3 members (one a child process) hold 4 each').catch(e => { throw new Fail(`${e.message}: ${assignments(ms)} + child ${show(childParts)}`) })
    const victim = childParts
    child.kill('SIGKILL') // no LeaveGroup
    const moved = await waitBalanced(ms, 12, 6, 'survivors hold 6 each', 40000)
    check(moved >= 4000, `partitions moved ${(moved / 1000).toFixed(1)}s after SIGKILL: before the 6 s session timeout`)
    return `partitions ${show(victim)} of the SIGKILLed member moved after ${(moved / 1000).toFixed(1)}s (sessionTimeout 6000)`
  } finally {
    child.kill('SIGKILL')
    await stopAll(ms)
  }
}

scenarios.group_cooperative = async () => {
  throw new NA('KafkaJS 2.2.4 has only eager assignors (RoundRobin) and no incremental cooperative rebalance (KIP-429)')
}

scenarios.group_static = async () => {
  throw new NA('KafkaJS 2.2.4 has no static membership: its JoinGroup never sends group.instance.id (KIP-345)')
}

scenarios.group_consumer_protocol = async () => {
  throw new NA('KafkaJS 2.2.4 implements only the classic group protocol (no ConsumerGroupHeartbeat, KIP-848)')
}

scenarios.group_commit_restart = async () => {
  const t = topicName('gcommit')
  const g = `${t}-g`
  await createTopic(t, 3)
  const per = 20
  const n = await produceKeyed(t, 3, per)
  const limit = [7, 12, 0] // partition 2: nothing committed
  let c = kafka.consumer({ groupId: g, maxWaitTimeInMs: 500, heartbeatInterval: 500 })
  const seen = range(0, 3).map(() => new Set())
  await c.connect()
  try {
    await c.subscribe({ topics: [t], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { seen[partition].add(Number(message.offset)) } })
    await waitFor(() => range(0, 3).every(p => range(0, limit[p]).every(o => seen[p].has(o))), T, 'first messages consumed')
    // Commit synchronously (awaited) what counts as consumed: offsets 0..limit-1.
    await c.commitOffsets(range(0, 2).map(p => ({ topic: t, partition: p, offset: String(limit[p]) })))
  } finally { await c.disconnect() }
  const committed = async () => (await withAdmin(a => a.fetchOffsets({ groupId: g, topics: [t] })))[0].partitions
    .sort((a, b) => a.partition - b.partition).map(p => Number(p.offset))
  eq(await committed(), [7, 12, -1], 'committed offsets before the restart')
  await ctl('restart')
  eq(await committed(), [7, 12, -1], 'committed offsets after the broker restart')
  const got = []
  c = kafka.consumer({ groupId: g, maxWaitTimeInMs: 500, heartbeatInterval: 500 })
  await c.connect()
  try {
    await c.subscribe({ topics: [t], fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { got.push([partition, Number(message.offset)]) } })
    const rest = n - limit.reduce((a, b) => a + b)
    await waitFor(() => got.length >= rest, T, `the remaining ${rest} messages consumed (got ${got.length})`)
    await sleep(500)
    for (let p = 0; p < 3; p++) {
      eq(got.filter(x => x[0] === p).map(x => x[1]), range(limit[p], per), `offsets consumed from partition ${p} after restart`)
    }
  } finally { await c.disconnect() }
  return `committed [7, 12, none] via await commitOffsets; after the broker restart resumed exactly there`
}

scenarios.group_admin = async () => {
  const t = topicName('gadmin')
  const g = `${t}-g`
  await createTopic(t, 4)
  const n = await produceKeyed(t, 4, 10)
  const ms = []
  try {
    ms.push(await groupMember(g, t), await groupMember(g, t))
    await waitFor(() => balanced(ms, 4, 2) && distinct(ms) >= n, T, '2 members hold 2 each and consumed everything')
    return await withAdmin(async a => {
      const offsets = async () => (await a.fetchOffsets({ groupId: g, topics: [t] }))[0].partitions
        .sort((x, y) => x.partition - y.partition).map(p => Number(p.offset))
      // autoCommit commits after each batch: wait for the last one.
      await waitFor(async () => show(await offsets()) === show([10, 10, 10, 10]), T, 'committed offsets 10 on every partition')
      const { groups } = await a.listGroups()
      const listed = groups.find(x => x.groupId === g)
      eq(listed && listed.protocolType, 'consumer', 'listed group protocol type')
      const d = (await a.describeGroups([g])).groups[0]
      eq([d.errorCode, d.state, d.protocolType, d.members.length], [0, 'Stable', 'consumer', 2], 'described group (error, state, protocol type, members)')
      let err = null
      try { await a.deleteGroups([g]) } catch (e) { err = e }
      check(err, 'DeleteGroups of a group with members succeeded')
      eq(err.groups?.[0]?.error?.type, 'NON_EMPTY_GROUP', 'DeleteGroups error of a group with members')
      await stopAll(ms.splice(0))
      await waitFor(async () => (await a.describeGroups([g])).groups[0].state === 'Empty', T, 'group Empty after its members left')
      await a.setOffsets({ groupId: g, topic: t, partitions: range(0, 4).map(p => ({ partition: p, offset: '3' })) })
      eq(await offsets(), [3, 3, 3, 3], 'offsets after setOffsets')
      await a.resetOffsets({ groupId: g, topic: t, earliest: true })
      const reset = await offsets()
      check(reset.every(o => o === 0 || o === -2), `offsets after resetOffsets(earliest): ${show(reset)}`)
      const del = await a.deleteGroups([g])
      eq(del.map(x => [x.groupId, x.errorCode]), [[g, 0]], 'DeleteGroups of the empty group')
      eq(await offsets(), [-1, -1, -1, -1], 'committed offsets after DeleteGroups (none)')
      check(!(await a.listGroups()).groups.some(x => x.groupId === g), `${g} still listed after DeleteGroups`)
      return `listed, described Stable (2 members, ${d.protocol}), fetchOffsets/setOffsets/resetOffsets(earliest -> ${reset[0]}), delete refused (NON_EMPTY_GROUP) then done; listGroups reports no state in KafkaJS (state from describeGroups)`
    })
  } finally { await stopAll(ms) }
}

scenarios.compacted_topic = async () => {
  const t = topicName('compact')
  await createTopic(t, 1, { 'cleanup.policy': 'compact', 'segment.ms': '100', 'min.cleanable.dirty.ratio': '0.01', 'delete.retention.ms': '2000' })
  const msgs = range(0, 3).flatMap(r => range(0, 5).map(k => ({ key: `k${k}`, value: `v${k}-${r}`, partition: 0 })))
  msgs.push({ key: 'k0', value: null, partition: 0 }) // tombstone
  const res = await produce(t, msgs)
  const base = Number(res[0].baseOffset)
  const last = new Map()
  msgs.forEach((m, i) => last.set(m.key, [base + i, m.value]))
  let err = null
  try { await produce(t, [{ value: 'keyless', partition: 0 }], { producerOpts: { retry: { retries: 0 } } }) } catch (e) { err = e }
  check(err !== null, 'keyless record accepted by a compacted topic')
  check(/INVALID_RECORD/.test(`${err.type} ${err.originalError?.type} ${err.message}`), `keyless record: expected INVALID_RECORD, got ${err.type || err.message}`)
  const p = kafka.producer()
  await p.connect()
  const started = Date.now()
  let compactedAt = null
  let filler = 0
  const wantLive = show([...last].filter(([, v]) => v[1] !== null).map(([k, v]) => [v[0], k, v[1]]).sort((a, b) => a[0] - b[0]))
  try {
    for (;;) {
      // Keep producing a little so segments roll and the cleaner has work.
      await p.send({ topic: t, acks: -1, messages: [{ key: 'filler', value: String(filler++), partition: 0 }] })
      const [low, high] = await watermarks(t)
      const log = (await readTo(t, 0, low, high)).map(m => [Number(m.offset), m.key.toString(), m.value === null ? null : m.value.toString()])
      const ours = log.filter(r => r[1] !== 'filler')
      const live = ours.filter(r => r[1] !== 'k0')
      const k0 = ours.filter(r => r[1] === 'k0')
      if (show(live) === wantLive && k0.every(r => r[2] === null)) {
        compactedAt = compactedAt || Date.now() - started
        if (k0.length === 0) break
      }
      check(Date.now() - started < 60000, `after 60s: records of k0..k4 ${show(ours)} (compacted: ${compactedAt !== null})`)
      await sleep(300)
    }
  } finally { await p.disconnect() }
  return `last value per key at its offset after ${(compactedAt / 1000).toFixed(1)}s, tombstone gone after ${((Date.now() - started) / 1000).toFixed(1)}s; keyless record rejected (INVALID_RECORD)`
}

// Every record of topic[partition] in [from, to) that is still in the log.
async function readTo (topic, partition, from, to) {
  const cluster = createCluster({})
  await cluster.connect()
  try {
    const broker = await leaderFor(cluster, topic, partition)
    let offset = from
    const out = []
    const deadline = Date.now() + T
    let empty = 0
    while (offset < to) {
      check(Date.now() < deadline, `reading ${topic}[${partition}] up to ${to} timed out at ${offset}`)
      const resp = await broker.fetch({ replicaId: -1, isolationLevel: 1, maxWaitTime: 100, minBytes: 1, maxBytes: 16 * ONE_MIB,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 4 * ONE_MIB }] }] })
      const p = resp.responses[0].partitions[0]
      check(p.errorCode === 0, `fetch error code ${p.errorCode}`)
      for (const m of p.messages) {
        if (Number(m.offset) < offset || m.isControlRecord) continue
        out.push(m)
        offset = Number(m.offset) + 1
      }
      // KafkaJS decodes a header-only (empty) batch to no messages and cannot skip it: a
      // KafkaJS consumer stays at that offset forever. Kafka drops such batches (unless
      // they are a producer's last), so report it rather than spin.
      empty = p.messages.length ? 0 : empty + 1
      check(empty < 3, `fetch at ${offset} (below the high watermark ${to}) returns no records, only an empty batch: a KafkaJS consumer stalls there`)
    }
    return out
  } finally {
    await cluster.disconnect()
  }
}

// ---------------------------------------------------------------- transactions

// The values of `topic` a group consumer (KafkaJS's transactional reading: control
// records and aborted transactions are dropped unless readUncommitted) sees, as
// `partition:value`, until `last` (a value, per partition) has been seen on each.
async function readGroupUntil (topic, last, readUncommitted) {
  const c = kafka.consumer({ groupId: topicName('txn-reader'), readUncommitted, maxWaitTimeInMs: 200 })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { got.push(`${partition}:${message.value}`) } })
    await waitFor(() => last.every(l => got.includes(l)), T, `${show(last)} read from ${topic}`)
  } finally { await c.disconnect() }
  return got.sort()
}

const txnProducer = id => kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 })

scenarios.transactions = async () => {
  const t = topicName('txn')
  await createTopic(t, 2)
  const id = `compat-kafkajs-${t}`
  const p = txnProducer(id)
  await p.connect()
  let fenced
  try {
    for (const [tag, commit] of [['c1', true], ['a', false], ['c2', true]]) {
      const txn = await p.transaction()
      await txn.send({ topic: t, messages: [0, 1].map(partition => ({ partition, value: `${tag}-${partition}` })) })
      if (commit) await txn.commit(); else await txn.abort()
    }
    eq(await readGroupUntil(t, ['0:c2-0', '1:c2-1'], false), ['0:c1-0', '0:c2-0', '1:c1-1', '1:c2-1'],
      'read_committed sees the committed transactions only')
    eq((await readGroupUntil(t, ['0:c2-0', '1:c2-1'], true)).length, 6, 'readUncommitted sees the aborted records too')
    // A second instance fences the first (KafkaJS runs InitProducerId at its first
    // transaction).
    const p2 = txnProducer(id)
    await p2.connect()
    try {
      const txn = await p2.transaction()
      try {
        const zombie = await p.transaction()
        await zombie.send({ topic: t, messages: [{ partition: 0, value: 'zombie' }] })
        await zombie.commit()
        throw new Fail('the fenced producer committed')
      } catch (e) {
        if (e instanceof Fail) throw e
        fenced = e.type || e.name
      }
      await txn.send({ topic: t, messages: [{ partition: 0, value: 'live' }] })
      await txn.commit()
    } finally { await p2.disconnect() }
  } finally { await p.disconnect() }
  const after = await readGroupUntil(t, ['0:live', '1:c2-1'], false)
  eq(after.filter(v => v.startsWith('0:')), ['0:c1-0', '0:c2-0', '0:live'], "after fencing: the new instance's commit only")
  return `commit, abort, commit; the fenced instance got ${fenced}`
}

scenarios.txn_offsets = async () => {
  const src = topicName('txn-in')
  const dst = topicName('txn-out')
  await createTopic(src)
  await createTopic(dst)
  await produce(src, range(0, 6).map(i => ({ value: `m${i}` })))
  const groupId = topicName('txn-group')
  const p = txnProducer(`compat-kafkajs-${groupId}`)
  await p.connect()
  try {
    for (const [from, commit] of [[0, true], [3, false]]) {
      const txn = await p.transaction()
      await txn.send({ topic: dst, messages: range(from, from + 3).map(i => ({ partition: 0, value: `m${i}-out` })) })
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: src, partitions: [{ partition: 0, offset: String(from + 3) }] }] })
      if (commit) await txn.commit(); else await txn.abort()
    }
  } finally { await p.disconnect() }
  const offsets = await withAdmin(a => a.fetchOffsets({ groupId, topics: [src] }))
  eq(offsets[0].partitions[0].offset, '3', "the group's offset is the committed transaction's")
  eq(await readGroupUntil(dst, ['0:m2-out'], false), ['0:m0-out', '0:m1-out', '0:m2-out'], 'output of the committed transaction')
  return 'offsets committed with the transaction (sendOffsets), dropped with the aborted one'
}

// ---------------------------------------------------------------- runner

const ORDER = ['metadata', 'auth_refused', 'codec_none', 'codec_gzip', 'codec_snappy', 'codec_lz4', 'codec_zstd',
  'keys_headers', 'timestamp_create', 'timestamp_log_append', 'large_message', 'list_offsets',
  'idempotent', 'admin_create_topic', 'admin_describe_configs', 'admin_alter_configs',
  'admin_create_partitions', 'admin_delete_topic', 'delete_records',
  'group_split', 'group_rebalance', 'group_session_timeout', 'group_cooperative',
  'group_static', 'group_commit_restart', 'group_consumer_protocol', 'group_admin',
  'compacted_topic', 'transactions', 'txn_offsets', 'restart', 'kill9']

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

if (process.argv[2] === '--child-member') childMember(process.argv.slice(3)).catch(() => process.exit(3))
else main()
