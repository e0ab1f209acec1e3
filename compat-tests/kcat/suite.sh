#!/usr/bin/env bash
# kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2) against Weir.
# Run by compat-tests/run with WEIR_BOOTSTRAP and WEIR_CTL set. Each scenario runs in a
# subshell with `set -e`; `fail MSG` / `na MSG` end it; it prints
# `RESULT kcat <scenario> PASS|FAIL|NA <detail>`. kcat has no admin API, so the admin,
# DeleteRecords and LogAppendTime (needs a topic config) scenarios are n/a.
set -uo pipefail

B="${WEIR_BOOTSTRAP:-127.0.0.1:9092}"
SELECTED=",${WEIR_SCENARIOS:-},"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Every kcat call is bounded; -m bounds metadata waits inside kcat.
KC=(timeout 60 kcat -b "$B" -m 15 -q)
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

sc_metadata() {
  local t out
  t=$(topic meta)
  echo hello | produce "$t"  # Produce to an unknown topic auto-creates it
  out=$("${KC[@]}" -L -t "$t") || fail "kcat -L failed"
  grep -q "broker [0-9]* at $B" <<<"$out" || fail "broker $B not in metadata: $out"
  grep -q "topic \"$t\" with 1 partitions" <<<"$out" || fail "auto-created topic not listed with 1 partition: $out"
  grep -Eq "partition 0, leader [0-9]+, replicas: [0-9]+, isrs: [0-9]+" <<<"$out" || fail "partition line: $out"
  eq "$(consume "$t" '%o:%s\n')" "0:hello" "consumed"
}

sc_codec() {
  local codec=$1 t want
  t=$(topic "codec-$codec")
  seqlines 0 200 "key-" | sed 's/^key-\(.*\)$/key-\1:value-\1/' | produce "$t" -K: -X compression.codec="$codec" -X linger.ms=50
  want=$(seqlines 0 200 "" | sed 's/^\(.*\)$/\1 key-\1 value-\1/')
  eq "$(consume "$t" '%o %k %s\n')" "$want" "consumed offsets, keys, values"
  detail "200 messages"
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
  "$WEIR_CTL" kill9 || fail "\$WEIR_CTL kill9 failed"
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

ORDER=(metadata codec_none codec_gzip codec_snappy codec_lz4 codec_zstd keys_headers
  timestamp_create timestamp_log_append large_message list_offsets idempotent
  admin_create_topic admin_describe_configs admin_alter_configs admin_create_partitions
  admin_delete_topic delete_records restart kill9)

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
  case $rc in
    0) st=PASS ;;
    2) st=NA ;;
    *) st=FAIL; failed=1; [[ -n "$d" ]] || d="exit $rc" ;;
  esac
  echo "RESULT kcat $s $st $d ($((SECONDS - start))s)"
done
exit $failed
