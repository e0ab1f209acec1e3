#!/usr/bin/env bash
# Makes the secrets of the secured deployments (deploy/compose.secure.yaml and
# deploy/k8s-secure) with openssl, into DIR (default deploy/secrets, which git ignores):
#   ca.pem, ca.key             a CA (keep ca.key off the brokers)
#   weir-N.pem                 node N's key and certificate (Kafka's PEM keystore), for
#                              weir-N, localhost and 127.0.0.1 (Compose)
#   weir-k8s.pem               one key and certificate for every pod of the StatefulSet:
#                              *.weir-headless.NAMESPACE.svc.cluster.local (Kubernetes)
#   weir.properties            the brokers' security settings, with fresh passwords for
#                              the users `broker` (brokers among themselves) and `admin`
#   admin.properties           Kafka client settings for `admin` (weir --command-config,
#                              kafka-*.sh --command-config), SASL_SSL with PLAIN
#   plain-jaas.txt             the PLAIN users alone (the Kubernetes Secret weir-sasl)
# Usage: deploy/make-secrets.sh [DIR] [NAMESPACE]   (NAMESPACE: default "default")
# Existing files are kept, so passwords and keys survive a second run; delete DIR to
# start over.
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
namespace="${2:-default}"
mkdir -p "$dir"
cd "$dir"
umask 077

if [[ ! -f ca.pem ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=weir-ca" \
    -keyout ca.key -out ca.pem 2>/dev/null
fi

# cert NAME SAN...: NAME.pem (key + certificate) signed by the CA, for server and client
# use (a broker is both to the others).
cert() {
  local name=$1
  shift
  [[ -f "$name.pem" ]] && return 0
  local san
  san=$(IFS=,; echo "$*")
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" \
    -out "$name.csr" 2>/dev/null
  printf "subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" "$san" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  cat "$name.key" "$name.crt" >"$name.pem"
  rm -f "$name.key" "$name.csr" "$name.ext" "$name.crt"
}
for i in 1 2 3; do
  cert "weir-$i" "DNS:weir-$i" DNS:localhost IP:127.0.0.1
done
cert weir-k8s "DNS:*.weir-headless.$namespace.svc.cluster.local" \
  "DNS:weir.$namespace.svc.cluster.local" DNS:localhost IP:127.0.0.1

password() { openssl rand -base64 24 | tr -d '/+=' | cut -c1-24; }
if [[ ! -f plain-jaas.txt ]]; then
  broker_pw=$(password)
  admin_pw=$(password)
  printf '%s' "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$broker_pw\" user_broker=\"$broker_pw\" user_admin=\"$admin_pw\";" >plain-jaas.txt
  cat >admin.properties <<EOF
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PEM
ssl.truststore.location=$PWD/ca.pem
EOF
fi

# The Compose brokers' settings. Listeners, addresses, node ids and keystores come from
# each service's environment (deploy/compose.secure.yaml).
cat >weir.properties <<EOF
# Made by deploy/make-secrets.sh. INTERNAL (containers, follower fetches) and EXTERNAL
# (the host) speak SASL_SSL; CONTROLLER (Raft, heartbeats) speaks mutual TLS.
listener.security.protocol.map=INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
ssl.truststore.location=/run/secrets/ca.pem
listener.name.controller.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.jaas.config=$(cat plain-jaas.txt)
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:broker;User:admin;User:CN=weir-1;User:CN=weir-2;User:CN=weir-3
audit.log.file=/var/lib/weir/audit.log
EOF
# Compose mounts secrets as they are on the host, and the brokers run as uid 10001:
# they must be able to read their keystores and settings (keep DIR itself private).
chmod 0644 ./*.pem weir.properties
chmod 0600 ca.key admin.properties plain-jaas.txt
chmod 0700 .
echo "secrets in $PWD (admin's client settings: $PWD/admin.properties)"
