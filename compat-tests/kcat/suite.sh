#!/usr/bin/env bash
# kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2) against Weir.
# Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set. Each scenario runs in a
# subshell with `set -e`; `fail MSG` / `na MSG` end it; it prints
# `RESULT kcat <scenario> PASS|FAIL|NA <detail>`. kcat has no admin API, so the admin,
# DeleteRecords and LogAppendTime (needs a topic config) scenarios are n/a.
set -uo pipefail

B="${WEIR_BOOTSTRAP:-127.0.0.1:9092}"
# Every broker (compat-tests/run --cluster N lists all N) and the replication factor topics
# are created with (the cluster run's default.replication.factor, min(N, 3)).
IFS=, read -r -a BROKERS <<<"$B"
RF=$(( ${#BROKERS[@]} < 3 ? ${#BROKERS[@]} : 3 ))
SELECTED=",${WEIR_SCENARIOS:-},"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Every kcat call is bounded; -m bounds metadata waits inside kcat.
KC=(timeout 60 kcat -b "$B" -m 15 -q)
# TLS and SASL (compat-tests/run --security ssl|mtls|sasl_plaintext|sasl_ssl): every kcat
# reads its settings from $KCAT_CONFIG, as a user's kcat.conf would hold them.
security_conf() { # security_conf PASSWORD
  local protocol=plaintext
  [[ -n "${WEIR_SSL_CA:-}" ]] && protocol=ssl
  [[ -n "${WEIR_SASL_MECHANISM:-}" ]] && protocol="sasl_$protocol"
  echo "security.protocol=$protocol"
  if [[ -n "${WEIR_SSL_CA:-}" ]]; then
    echo "ssl.ca.location=$WEIR_SSL_CA"
    if [[ -n "${WEIR_SSL_CERT:-}" ]]; then
      echo "ssl.certificate.location=$WEIR_SSL_CERT"
      echo "ssl.key.location=$WEIR_SSL_KEY"
    fi
  fi
  if [[ "${WEIR_SASL_MECHANISM:-}" == OAUTHBEARER ]]; then
    # librdkafka 2.0.2 as Debian builds it has no OIDC (no libcurl): it makes unsigned
    # tokens itself, which kcat's broker takes only with scope "kafka". The wrong
    # password stands for a token without it.
    echo "sasl.mechanisms=OAUTHBEARER"
    echo "enable.sasl.oauthbearer.unsecure.jwt=true"
    if [[ "$1" == "${WEIR_SASL_PASSWORD:-}" ]]; then
      echo "sasl.oauthbearer.config=principal=$WEIR_SASL_USERNAME scope=kafka"
    else
      echo "sasl.oauthbearer.config=principal=$WEIR_SASL_USERNAME"
    fi
  elif [[ -n "${WEIR_SASL_MECHANISM:-}" ]]; then
    echo "sasl.mechanisms=$WEIR_SASL_MECHANISM"
    echo "sasl.username=$WEIR_SASL_USERNAME"
    echo "sasl.password=$1"
  fi
}
if [[ -n "${WEIR_SSL_CA:-}${WEIR_SASL_MECHANISM:-}" ]]; then
  security_conf "${WEIR_SASL_PASSWORD:-}" >"$WORK/kcat.conf"
  export KCAT_CONFIG="$WORK/kcat.conf"
fi
ONE_MIB=1048576

fail() { [[ -s "$WORK/detail" ]] || echo "$*" >"$WORK/detail"; exit 1; }  # first failure wins
na() { echo "$*" >"$WORK/detail"; exit 2; }
detail() { echo "$*" >"$WORK/detail"; }
topic() { echo "compat-$1-$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"; }
eq() { # eq ACTUAL EXPECTED WHAT
  [[ "$1" == "$2" ]] || fail "$3: expected '${2:0:200}', got '${1:0:200}'"
}
produce() { # produce TOPIC [kcat producer args...] < lines
  local t=$1; shift
  "${KC[@]}" -P -t "$t" -p 0 -X message.timeout.ms=30000 "$@" || fail "kcat -P to $t failed (rc $?)"
}
consume() { # consume TOPIC FORMAT [COUNT] -> all messages of partition 0 from the beginning
  local t=$1 fmt=$2
  "${KC[@]}" -C -t "$t" -p 0 -o beginning -e -Z -f "$fmt" ${3:+-c "$3"} \
    -X fetch.message.max.bytes=4194304 -X receive.message.max.bytes=100000000 \
    || fail "kcat -C from $t failed (rc $?)"
}
query() { # query TOPIC TS -> offset (kcat -Q)
  local out
  out=$("${KC[@]}" -Q -t "$1:0:$2") || fail "kcat -Q $1:0:$2 failed"
  sed -n 's/.*\[0\] offset \(-\{0,1\}[0-9]*\).*/\1/p' <<<"$out" | head -1
}
seqlines() { for ((i = $1; i < $2; i++)); do echo "$3$i"; done; }

sc_auth_refused() {
  [[ -n "${WEIR_SASL_MECHANISM:-}" ]] || na "the listener does not authenticate clients (no SASL in this mode)"
  security_conf not-the-password >"$WORK/wrong.conf"
  local out
  if out=$(KCAT_CONFIG="$WORK/wrong.conf" timeout 60 kcat -b "$B" -m 10 -L 2>&1); then
    fail "kcat -L succeeded with a wrong password"
  fi
  grep -q "Authentication failure\|SASL authentication error" <<<"$out" || fail "no authentication error: ${out:0:300}"
  "${KC[@]}" -L >/dev/null || fail "kcat -L fails with the right password"
  detail "$(grep -m1 -o "SASL authentication error[^(]*" <<<"$out")"
}

sc_metadata() {
  local t out
  t=$(topic meta)
  echo hello | produce "$t"  # Produce to an unknown topic auto-creates it
  out=$("${KC[@]}" -L -t "$t") || fail "kcat -L failed"
  local b
  for b in "${BROKERS[@]}"; do
    grep -q "broker [0-9]* at $b" <<<"$out" || fail "broker $b not in metadata: $out"
  done
  eq "$(grep -c "broker [0-9]* at " <<<"$out")" "${#BROKERS[@]}" "brokers in metadata"
  grep -q "topic \"$t\" with 1 partitions" <<<"$out" || fail "auto-created topic not listed with 1 partition: $out"
  # replicas: default.replication.factor (RF) of them, all in sync
  local reps
  reps=$(seq -s, 1 "$RF" | sed 's/[0-9]*/[0-9]+/g')
  grep -Eq "partition 0, leader [0-9]+, replicas: $reps, isrs: $reps" <<<"$out" || fail "partition line ($RF replicas expected): $out"
  eq "$(consume "$t" '%o:%s\n')" "0:hello" "consumed"
}

sc_codec() {
  local codec=$1 t want
  t=$(topic "codec-$codec")
  seqlines 0 200 "key-" | sed 's/^key-\(.*\)$/key-\1:value-\1/' | produce "$t" -K: -X compression.codec="$codec" -X linger.ms=50
  want=$(seqlines 0 200 "" | sed 's/^\(.*\)$/\1 key-\1 value-\1/')
  eq "$(consume "$t" '%o %k %s\n')" "$want" "consumed offsets, keys, values"
  # The broker compresses: a topic whose compression.type names the codec stores
  # kcat's uncompressed batches in it, and kcat reads them back.
  local bt broker_codec=$codec
  [[ $codec == none ]] && broker_codec=uncompressed
  bt=$(topic "codec-broker-$codec")
  create_topic "$bt" 1 compression.type="$broker_codec"
  seqlines 0 200 "key-" | sed 's/^key-\(.*\)$/key-\1:value-\1/' | produce "$bt" -K: -X linger.ms=50
  eq "$(consume "$bt" '%o %k %s\n')" "$want" "broker-compressed offsets, keys, values"
  detail "200 messages; 200 more compressed by the broker ($broker_codec)"
}
sc_codec_none() { sc_codec none; }
sc_codec_gzip() { sc_codec gzip; }
sc_codec_snappy() { sc_codec snappy; }
sc_codec_lz4() { sc_codec lz4; }
sc_codec_zstd() { sc_codec zstd; }

sc_keys_headers() {
  local t
  t=$(topic keys)
  printf 'k1:v1\nnokey\nk3:\n' | produce "$t" -K: -Z -H h1=a -H h2= -H nullhdr -H h1=dup
  # -Z: an empty key/value is sent (and printed) as NULL; -H name without '=' is a NULL value.
  eq "$(consume "$t" '%o|%K|%k|%S|%s|%h\n')" \
"0|2|k1|2|v1|h1=a,h2=,nullhdr=NULL,h1=dup
1|-1|NULL|5|nokey|h1=a,h2=,nullhdr=NULL,h1=dup
2|2|k3|-1|NULL|h1=a,h2=,nullhdr=NULL,h1=dup" "offsets, keys, values, headers"
}

sc_timestamp_create() {
  # kcat cannot set a message timestamp: librdkafka stamps CreateTime = now at produce.
  local t before after ts
  t=$(topic ts-create)
  before=$(date +%s%3N)
  echo a | produce "$t"
  after=$(date +%s%3N)
  ts=$(consume "$t" '%T\n')
  [[ "$ts" =~ ^[0-9]+$ ]] || fail "timestamp not a number: $ts"
  ((ts >= before - 1000 && ts <= after + 1000)) || fail "CreateTime $ts not within [$before, $after]"
  local tstype
  tstype=$("${KC[@]}" -C -t "$t" -p 0 -o beginning -e -J | sed -n 's/.*"tstype":"\([a-z]*\)".*/\1/p')
  eq "$tstype" "create" "timestamp type"
}

sc_timestamp_log_append() { na "kcat cannot create a topic with message.timestamp.type=LogAppendTime (no admin API)"; }

sc_large_message() {
  # The topic can't get max.message.bytes through kcat, so the value is sized to fit the
  # default 1048588-byte batch limit: 1 MiB minus 128 bytes of batch/record overhead.
  local t size=$((ONE_MIB - 128)) out
  t=$(topic large)
  head -c $((size / 2)) /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$WORK/big"
  eq "$(wc -c <"$WORK/big")" "$size" "payload size"
  produce "$t" -X message.max.bytes=4194304 -X compression.codec=none "$WORK/big"
  echo after | produce "$t"
  out=$(consume "$t" '%o %S\n')
  eq "$out" "0 $size
1 5" "offsets and sizes"
  consume "$t" '%s' 1 >"$WORK/big.out"
  cmp -s "$WORK/big" "$WORK/big.out" || fail "large value differs after round trip"
  detail "$size bytes"
}

sc_list_offsets() {
  local t ts0 ts1 ts2
  t=$(topic offsets)
  for i in 0 1 2; do
    echo "m$i" | produce "$t"
    sleep 0.01  # distinct CreateTimes (kcat cannot set them)
  done
  mapfile -t ts < <(consume "$t" '%T\n')
  eq "${#ts[@]}" 3 "message count"
  ((ts[0] < ts[1] && ts[1] < ts[2])) || fail "timestamps not increasing: ${ts[*]}"
  eq "$(query "$t" $((ts[0] - 5000)))" 0 "offset before first timestamp"
  eq "$(query "$t" "${ts[1]}")" 1 "offset for second timestamp"
  eq "$(query "$t" $((ts[1] + 1)))" 2 "offset just after second timestamp"
  eq "$(query "$t" $((ts[2] + 100000)))" -1 "offset after last timestamp"
  eq "$(query "$t" -2)" 0 "earliest"
  eq "$(query "$t" -1)" 3 "latest"
}

sc_idempotent() {
  local t
  t=$(topic idem)
  seqlines 0 500 "m-" | produce "$t" -X enable.idempotence=true -X acks=all -X linger.ms=2 -X batch.num.messages=20
  eq "$(consume "$t" '%o %s\n')" "$(seqlines 0 500 "" | sed 's/^\(.*\)$/\1 m-\1/')" "log content (each once, in order)"
}

sc_admin_create_topic() { na "kcat has no admin API (CreateTopics)"; }
sc_admin_describe_configs() { na "kcat has no admin API (DescribeConfigs)"; }
sc_admin_alter_configs() { na "kcat has no admin API (IncrementalAlterConfigs)"; }
sc_admin_create_partitions() { na "kcat has no admin API (CreatePartitions)"; }
sc_admin_delete_topic() { na "kcat has no admin API (DeleteTopics)"; }
sc_delete_records() { na "kcat has no DeleteRecords"; }

sc_restart() {
  local t before after
  t=$(topic restart)
  seqlines 0 20 "" | sed 's/^\(.*\)$/k\1:v\1/' | produce "$t" -K: -H src=kcat
  before=$(consume "$t" '%o|%k|%s|%h|%T\n')
  "$WEIR_CTL" restart || fail "\$WEIR_CTL restart failed"
  after=$(consume "$t" '%o|%k|%s|%h|%T\n')
  eq "$after" "$before" "log after restart"
  eq "$(query "$t" -1)" 20 "latest after restart"
  echo more | produce "$t"
  eq "$(consume "$t" '%o %s\n' | tail -1)" "20 more" "next offset after restart"
}

sc_kill9() {
  # A: 300 messages acked by a kcat that exited 0 (all delivered, acks=all, idempotent).
  # B: 300 more produced slowly while the broker is killed and restarted (-E: kcat keeps
  #    going when all brokers are down); if kcat exits 0 they were all acknowledged too. Every acknowledged message must be there exactly once.
  local t rc_b pid out
  t=$(topic kill9)
  local P=(-X enable.idempotence=true -X acks=all -X linger.ms=1)
  seqlines 0 300 "a-" | produce "$t" "${P[@]}"
  (seqlines 0 300 "b-" | while read -r l; do echo "$l"; sleep 0.01; done |
    timeout 120 kcat -b "$B" -q -E -P -t "$t" -p 0 -X message.timeout.ms=90000 "${P[@]}") &
  pid=$!
  sleep 1
  "$WEIR_CTL" kill9 "$t" || fail "\$WEIR_CTL kill9 failed"  # cluster: kills $t/0's leader
  "$WEIR_CTL" start || fail "\$WEIR_CTL start failed"
  rc_b=0
  wait "$pid" || rc_b=$?
  out=$(consume "$t" '%s\n')
  local dups
  dups=$(sort <<<"$out" | uniq -d | head -3)
  [[ -z "$dups" ]] || fail "duplicated messages: $dups"
  for ((i = 0; i < 300; i++)); do
    grep -qx "a-$i" <<<"$out" || fail "acknowledged message a-$i lost"
  done
  if ((rc_b == 0)); then
    for ((i = 0; i < 300; i++)); do
      grep -qx "b-$i" <<<"$out" || fail "acknowledged message b-$i lost (kcat reported all delivered)"
    done
  fi
  detail "$(wc -l <<<"$out") messages in log; batch B kcat exit $rc_b"
}

# ---------------------------------------------------------------- consumer groups

create_topic() { # create_topic NAME PARTITIONS [name=value...]: kcat has no admin API, so a raw
  # CreateTopics v2 request (python3 stdlib) creates the topic; then waits for it in kcat -L.
  # Replication factor RF; on a cluster any node takes CreateTopics (it forwards to the controller).
  python3 - "$B" "$RF" "$@" <<'PY' || fail "CreateTopics $1 failed"
import os, socket, ssl, struct, sys
host, port = sys.argv[1].split(",")[0].rsplit(":", 1)
rf = int(sys.argv[2])
name, parts, cfg = sys.argv[3], int(sys.argv[4]), [a.split("=", 1) for a in sys.argv[5:]]
s16 = lambda x: struct.pack(">h", len(x.encode())) + x.encode()
body = (struct.pack(">i", 1) + s16(name) + struct.pack(">ihi", parts, rf, 0) + struct.pack(">i", len(cfg))
        + b"".join(s16(k) + s16(v) for k, v in cfg) + struct.pack(">i?", 30000, False))
def call(s, api, version, body):
    req = struct.pack(">hhi", api, version, 7) + s16("kcat-suite") + body
    s.sendall(struct.pack(">i", len(req)) + req)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
    return buf
with socket.create_connection((host, int(port)), timeout=30) as s:
    if os.environ.get("WEIR_SSL_CA"):
        ctx = ssl.create_default_context(cafile=os.environ["WEIR_SSL_CA"])
        if os.environ.get("WEIR_SSL_CERT"):
            ctx.load_cert_chain(os.environ["WEIR_SSL_CERT"], os.environ["WEIR_SSL_KEY"])
        s = ctx.wrap_socket(s, server_hostname=host)
    if os.environ.get("WEIR_SASL_MECHANISM"):
        # SaslHandshake v1 and SaslAuthenticate v0 with PLAIN, which the runner's SASL
        # listener enables for the suites' user whatever mechanism kcat is tested with.
        hs = call(s, 17, 1, s16("PLAIN"))
        if struct.unpack(">h", hs[8:10])[0]:
            sys.exit("SaslHandshake PLAIN refused")
        token = f"\0{os.environ['WEIR_SASL_USERNAME']}\0{os.environ['WEIR_SASL_PASSWORD']}".encode()
        auth = call(s, 36, 0, struct.pack(">i", len(token)) + token)
        if struct.unpack(">h", auth[8:10])[0]:
            sys.exit("SaslAuthenticate refused")
    buf = call(s, 19, 2, body)
# size, correlation id, throttle, topic count, name, error code
n = struct.unpack(">h", buf[16:18])[0]
err = struct.unpack(">h", buf[18 + n:20 + n])[0]
sys.exit(f"CreateTopics error {err}" if err else 0)
PY
  local i
  for ((i = 0; i < 100; i++)); do
    "${KC[@]}" -L -t "$1" 2>/dev/null | grep -q "topic \"$1\" with $2 partitions" && return 0
    sleep 0.1
  done
  fail "topic $1 not in metadata with $2 partitions"
}
now_ms() { date +%s%3N; }
GPIDS=()
member() { # member NAME GROUP TOPIC [kcat args...]: a balanced (-G) consumer in the background;
  # stdout "partition offset value" in $WORK/NAME.out, rebalances (stderr) in $WORK/NAME.err
  local name=$1 g=$2 t=$3; shift 3
  timeout 300 kcat -b "$B" -m 15 -u -G "$g" "$t" -f '%p %o %s\n' -Z -X auto.offset.reset=earliest \
    -X session.timeout.ms=10000 -X heartbeat.interval.ms=500 -X topic.metadata.refresh.interval.ms=1000 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  echo $! >"$WORK/$name.pid"
  GPIDS+=($!)
}
assigned() { # assigned NAME -> the member's partitions after its last rebalance, sorted
  local last
  last=$(grep -E "(assigned|revoked):" "$WORK/$1.err" | tail -1)
  [[ "$last" == *assigned:* ]] || return 0
  grep -o '\[[0-9]*\]' <<<"${last#*assigned:}" | tr -d '[]' | sort -n | tr '\n' ' ' | sed 's/ $//'
}
balanced() { # balanced N EACH NAME... : each member holds EACH partitions, disjoint, covering 0..N-1
  local n=$1 each=$2 m all=""; shift 2
  for m in "$@"; do
    local a
    a=$(assigned "$m")
    [[ $(wc -w <<<"$a") -eq $each ]] || return 1
    all+=" $a"
  done
  [[ "$(tr ' ' '\n' <<<"$all" | grep . | sort -n | tr '\n' ' ')" == "$(seq 0 $((n - 1)) | tr '\n' ' ')" ]]
}
wait_for() { # wait_for SECONDS WHAT CMD... -> prints elapsed ms
  local secs=$1 what=$2 start; shift 2
  start=$(now_ms)
  until "$@"; do
    (($(now_ms) - start < secs * 1000)) || fail "$what: not reached after ${secs}s"
    sleep 0.05
  done
  echo $(($(now_ms) - start))
}
show_assign() { local m; for m in "$@"; do printf '%s=[%s] ' "$m" "$(assigned "$m")"; done; }
stop_members() { local p; for p in "${GPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait "${GPIDS[@]}" 2>/dev/null || true; GPIDS=(); }
stop_member() { kill -TERM "$(cat "$WORK/$1.pid")" || true; wait "$(cat "$WORK/$1.pid")" 2>/dev/null || true; }
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
produce_parts() { # produce_parts TOPIC PARTITIONS PER [FROM]: keyed messages "k<p>-<i>:v<p>-<i>" per partition
  local p
  for ((p = 0; p < $2; p++)); do
    seq "${4:-0}" $((${4:-0} + $3 - 1)) | sed "s/.*/k$p-&:v$p-&/" | "${KC[@]}" -P -t "$1" -p "$p" -K: -X message.timeout.ms=30000 \
      || fail "kcat -P to $1[$p] failed"
  done
}
consumed() { cat "$WORK"/"$1"*.out 2>/dev/null | grep -E '^[0-9]+ [0-9]+ ' ; }  # consumed PREFIX

sc_group_split() {
  local t g took n=300 dups missing
  t=$(topic gsplit); g="$t-g"
  trap stop_members EXIT
  create_topic "$t" 12
  produce_parts "$t" 12 25
  member s1 "$g" "$t"
  wait_for 30 "first member holds all 12" balanced 12 12 s1 >/dev/null
  member s2 "$g" "$t"
  wait_for 30 "2 members hold 6 each ($(show_assign s1 s2))" balanced 12 6 s1 s2 >/dev/null
  member s3 "$g" "$t"
  took=$(wait_for 30 "3 members hold 4 each" balanced 12 4 s1 s2 s3) || fail "3 members hold 4 each: $(show_assign s1 s2 s3)"
  produce_parts "$t" 12 25 25  # the second half once the group is stable
  wait_for 30 "all $((2 * n)) messages consumed" bash -c "[[ \$(cat $WORK/s?.out | wc -l) -ge $((2 * n)) ]]" >/dev/null \
    || fail "only $(cat "$WORK"/s?.out | wc -l) of $((2 * n)) messages consumed"
  sleep 1
  dups=$(cut -d' ' -f1,2 "$WORK"/s?.out | sort | uniq -d | head -3 | tr '\n' ',')
  [[ -z "$dups" ]] || fail "messages consumed twice: $dups"
  missing=$(comm -23 <(for p in $(seq 0 11); do seq 0 49 | sed "s/^/$p /"; done | sort) <(cut -d' ' -f1,2 "$WORK"/s?.out | sort) | head -3 | tr '\n' ',')
  [[ -z "$missing" ]] || fail "messages never consumed: $missing"
  balanced 12 4 s1 s2 s3 || fail "assignment changed after the rebalance: $(show_assign s1 s2 s3)"
  detail "3 members, rebalance $(secs "$took")s; $((2 * n)) messages once each (per member $(wc -l <"$WORK/s1.out")/$(wc -l <"$WORK/s2.out")/$(wc -l <"$WORK/s3.out"))"
}

all_consumed() { # every record in $WORK/produced was printed by some member
  [[ -z "$(comm -23 <(sort "$WORK/produced" 2>/dev/null) <(cut -d' ' -f3 "$WORK"/r?.out | sort -u))" ]]
}

sc_group_rebalance() {
  local t g join leave prod_pid produced missing
  t=$(topic greb); g="$t-g"
  trap 'touch "$WORK/stop"; stop_members' EXIT
  create_topic "$t" 12
  member r1 "$g" "$t"; member r2 "$g" "$t"; member r3 "$g" "$t"
  wait_for 30 "3 members hold 4 each" balanced 12 4 r1 r2 r3 >/dev/null || fail "3 members hold 4 each: $(show_assign r1 r2 r3)"
  # Produce all along the membership changes: one kcat -P per message (exit 0 = delivered),
  # to partitions in turn, until $WORK/stop exists.
  (i=0; while [[ ! -e "$WORK/stop" ]]; do
    if [[ -e "$WORK/pause" ]]; then touch "$WORK/paused"; sleep 0.05; continue; fi
    echo "live-$i" | "${KC[@]}" -P -t "$t" -p $((i % 12)) -X message.timeout.ms=30000 && echo "live-$i" >>"$WORK/produced"
    i=$((i + 1))
  done) &
  prod_pid=$!
  sleep 0.5
  member r4 "$g" "$t"
  join=$(wait_for 30 "4 members hold 3 each" balanced 12 3 r1 r2 r3 r4) || fail "4 members hold 3 each: $(show_assign r1 r2 r3 r4)"
  # kcat drops a message it polls after SIGTERM and then commits past it (see the retry
  # below), so the member leaves once it has printed everything produced so far: the
  # producer pauses until then and resumes during the rebalance.
  touch "$WORK/pause"
  local settle=0
  until [[ -e "$WORK/paused" ]] && all_consumed || ((settle >= 300)); do sleep 0.1; settle=$((settle + 1)); done
  local start
  start=$(now_ms)
  stop_member r2  # SIGTERM: kcat closes the consumer (LeaveGroup)
  rm -f "$WORK/pause" "$WORK/paused"
  leave=$(wait_for 30 "3 members hold 4 each after a clean leave" balanced 12 4 r1 r3 r4) || fail "after leave: $(show_assign r1 r3 r4)"
  leave=$((leave + $(now_ms) - start - leave))
  sleep 1
  touch "$WORK/stop"
  wait "$prod_pid" || true
  produced=$(sort "$WORK/produced")
  [[ $(wc -l <<<"$produced") -gt 10 ]] || fail "only $(wc -l <<<"$produced") messages produced during the changes"
  local waited=0 missing
  while :; do
    missing=$(comm -23 <(echo "$produced") <(cut -d' ' -f3 "$WORK"/r?.out | sort -u))
    [[ -z "$missing" ]] && break
    if ((waited >= 300)); then
      local n p m
      n=$(head -1 <<<"$missing"); n=${n#live-}; p=$((n % 12))
      fail "$(wc -l <<<"$missing") messages never consumed, e.g. $(head -3 <<<"$missing" | tr '\n' ' '); partition $p as each member saw it: $(for m in r1 r2 r3 r4; do printf '%s=[%s] ' "$m" "$(awk -v p="$p" '$1 == p {printf "%s ", $2}' "$WORK/$m.out")"; done)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  balanced 12 4 r1 r3 r4 || fail "assignment changed at the end: $(show_assign r1 r3 r4)"
  detail "join: 4x3 after $(secs "$join")s; leave: 3x4 after $(secs "$leave")s; $(wc -l <<<"$produced") produced meanwhile, all consumed"
}

sc_group_session_timeout() {
  local t g moved victim
  t=$(topic gsess); g="$t-g"
  trap stop_members EXIT
  create_topic "$t" 12
  member k1 "$g" "$t" -X session.timeout.ms=6000
  member k2 "$g" "$t" -X session.timeout.ms=6000
  member k3 "$g" "$t" -X session.timeout.ms=6000
  wait_for 30 "3 members hold 4 each" balanced 12 4 k1 k2 k3 >/dev/null || fail "3 members hold 4 each: $(show_assign k1 k2 k3)"
  victim=$(assigned k3)
  kill -9 "$(pgrep -P "$(cat "$WORK/k3.pid")" kcat || cat "$WORK/k3.pid")"  # the kcat under timeout: no LeaveGroup
  moved=$(wait_for 40 "survivors hold 6 each" balanced 12 6 k1 k2) || fail "survivors: $(show_assign k1 k2)"
  ((moved >= 4000)) || fail "partitions moved $(secs "$moved")s after kill -9: before the 6 s session timeout"
  detail "partitions [$victim] of the kill -9'd member moved after $(secs "$moved")s (session.timeout.ms=6000)"
}

sc_group_cooperative() { na "not written for kcat (time budget): incremental cooperative-sticky rebalancing is covered by rdkafka (librdkafka 2.12)"; }
sc_group_static() { na "not written for kcat (time budget): static-member restart is covered by rdkafka (librdkafka 2.12); kcat could pass -X group.instance.id"; }
sc_group_consumer_protocol() { na "Debian's kcat 1.7.1 is built on librdkafka 2.0.2, which has no group.protocol=consumer (KIP-848 arrived in librdkafka 2.4+)"; }
sc_group_admin() { na "kcat has no admin API (ListGroups, DescribeGroups, OffsetFetch, DeleteGroups)"; }
sc_transactions() { na "kcat has no transactional producer (no init/begin/commit/abort); librdkafka's transactions are covered by confluent-kafka and rdkafka"; }
sc_txn_offsets() { na "kcat has no transactional producer (send_offsets_to_transaction)"; }

sc_group_commit_restart() {
  # kcat cannot commit on demand: -c N consumes N messages and exits, and its close commits
  # the consumed offsets synchronously (enable.auto.commit's final commit).
  local t g first want got
  t=$(topic gcommit); g="$t-g"
  trap stop_members EXIT
  create_topic "$t" 3
  produce_parts "$t" 3 20
  timeout 60 kcat -b "$B" -m 15 -G "$g" "$t" -f '%p %o\n' -X auto.offset.reset=earliest -c 25 \
    >"$WORK/c1.out" 2>"$WORK/c1.err" || fail "first kcat -G -c 25 failed: $(tail -3 "$WORK/c1.err")"
  eq "$(wc -l <"$WORK/c1.out")" 25 "messages consumed by the first consumer"
  want=""
  for p in 0 1 2; do
    local next
    next=$(awk -v p=$p '$1 == p { n = $2 + 1 } END { print n + 0 }' "$WORK/c1.out")
    want+="$p:$next "
  done
  "$WEIR_CTL" restart || fail "\$WEIR_CTL restart failed"
  timeout 60 kcat -b "$B" -m 15 -G "$g" "$t" -f '%p %o\n' -X auto.offset.reset=earliest -e \
    >"$WORK/c2.out" 2>"$WORK/c2.err" || fail "second kcat -G -e failed: $(tail -3 "$WORK/c2.err")"
  got=""
  for p in 0 1 2; do
    first=$(awk -v p=$p '$1 == p { print $2; exit }' "$WORK/c2.out")
    got+="$p:${first:-20} "
  done
  eq "$got" "$want" "first offset per partition after the broker restart (partition:offset)"
  eq "$(wc -l <"$WORK/c2.out")" 35 "messages consumed after the restart (none twice)"
  detail "committed ${want% } on close after 25 of 60; resumed exactly there after the broker restart"
}

sc_compacted_topic() {
  local t out started compacted="" filler=0 want k0 ours live
  t=$(topic compact)
  create_topic "$t" 1 cleanup.policy=compact segment.ms=100 min.cleanable.dirty.ratio=0.01 delete.retention.ms=2000
  for r in 0 1 2; do for k in 0 1 2 3 4; do echo "k$k:v$k-$r"; done; done | produce "$t" -K:
  echo "k0:" | produce "$t" -K: -Z  # tombstone (-Z: empty value is NULL)
  # Keyless record: the broker must refuse it with INVALID_RECORD.
  out=$(echo keyless | timeout 60 kcat -b "$B" -P -t "$t" -p 0 -X message.timeout.ms=10000 -X retries=0 2>&1) \
    && fail "keyless record accepted by a compacted topic: $out"
  # librdkafka 2.0.2's text for INVALID_RECORD (87) is "Broker failed to validate record".
  grep -qi "failed to validate record\|invalid record\|INVALID_RECORD" <<<"$out" || fail "keyless record: expected INVALID_RECORD, got: $out"
  want="10 k0 NULL
11 k1 v1-2
12 k2 v2-2
13 k3 v3-2
14 k4 v4-2"
  started=$(now_ms)
  while :; do
    echo "filler:$((filler++))" | produce "$t" -K:  # keep segments rolling
    ours=$(consume "$t" '%o %k %s\n' | grep -v '^[0-9]* filler ')
    live=$(grep -v ' k0 ' <<<"$ours")
    k0=$(grep ' k0 ' <<<"$ours" || true)
    if [[ "$live" == "$(tail -4 <<<"$want")" && ( -z "$k0" || "$k0" == "10 k0 NULL" ) ]]; then
      [[ -n "$compacted" ]] || compacted=$(($(now_ms) - started))
      [[ -n "$k0" ]] || break
    fi
    (($(now_ms) - started < 60000)) || fail "after 60s: $(tr '\n' ',' <<<"$ours") (compacted: ${compacted:-no})"
    sleep 0.3
  done
  detail "last value per key at its offset after $(secs "$compacted")s, tombstone gone after $(secs $(($(now_ms) - started)))s; keyless record rejected (INVALID_RECORD)"
}

ORDER=(metadata auth_refused codec_none codec_gzip codec_snappy codec_lz4 codec_zstd keys_headers
  timestamp_create timestamp_log_append large_message list_offsets idempotent
  admin_create_topic admin_describe_configs admin_alter_configs admin_create_partitions
  admin_delete_topic delete_records
  group_split group_rebalance group_session_timeout group_cooperative group_static
  group_commit_restart group_consumer_protocol group_admin compacted_topic
  transactions txn_offsets restart kill9)

failed=0
for s in "${ORDER[@]}"; do
  [[ "$SELECTED" == ",," || "$SELECTED" == *",$s,"* ]] || continue
  rm -f "$WORK/detail"
  start=$SECONDS
  echo "=== $s"
  (set -e; "sc_$s")
  rc=$?
  d=""
  [[ -f "$WORK/detail" ]] && d=$(tr "\n" " " <"$WORK/detail")
  # group_rebalance has skipped one record about 1 run in 8 under load: after the member
  # stopped with SIGTERM leaves, the next owner of one of its partitions resumes one
  # offset past the last record it printed. That is kcat's own race, not the broker's:
  # in -G mode librdkafka stores a message's offset when rd_kafka_consumer_poll()
  # returns it (enable.auto.offset.store), and kcat's consume_cb() begins with
  # `if (!conf.run) return;`, so a message polled just after the signal cleared
  # conf.run is dropped unprinted while rd_kafka_consumer_close() commits past it
  # (kcat.c, edenhill/kcat). Retried once; the first failure stays visible.
  if [[ $rc == 1 && $s == group_rebalance ]]; then
    first="$d"
    rm -f "$WORK/detail" "$WORK/stop" "$WORK/pause" "$WORK/paused" "$WORK/produced" "$WORK"/r?.out "$WORK"/r?.err
    (set -e; "sc_$s")
    rc=$?
    d=""
    [[ -f "$WORK/detail" ]] && d=$(tr "\n" " " <"$WORK/detail")
    ((rc != 0)) || d="$d [FLAKY: failed once before passing: $first]"
  fi
  case $rc in
    0) st=PASS ;;
    2) st=NA ;;
    *) st=FAIL; failed=1; [[ -n "$d" ]] || d="exit $rc" ;;
  esac
  echo "RESULT kcat $s $st $d ($((SECONDS - start))s)"
done
exit $failed
