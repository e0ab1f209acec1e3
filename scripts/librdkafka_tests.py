#!/usr/bin/env python3
"""librdkafka's own security tests against Weir (run by scripts/librdkafka-tests).

    librdkafka_tests.py --weir BIN --runner DIR --python VENV_PY [--tests 0097,0126,...]

Tests: 0097, 0097-required, 0103, 0126, 0129, 0135, 0142 (default: all but 0097-required).

DIR is librdkafka's tests/ directory with its built test-runner. For each group of
tests this starts a single `weir` on free ports with the listener the tests need, writes
the test.conf and the environment librdkafka's test harness (trivup) would give them,
and runs ./test-runner with TESTS (and SUBTESTS, a substring filter, where only some
sub-tests apply). The material comes from openssl: a CA, the broker's certificate, a
client key (encrypted) with its certificate in PEM, DER and PKCS#12; librdkafka's own
fixtures provide the untrusted client certificates. OIDC tokens come from
compat-tests/python/idp.py, whose JWKS the broker reads.

  0097-ssl_verify          SSL listener with ssl.client.auth=requested, over TLS 1.2 (what
                           librdkafka's harness, trivup, gives Kafka) and TLS 1.3: trusted
                           and untrusted client certificates, every way of loading them,
                           and the application's verify callback refusing the broker. The
                           client reaches the broker through a relay that delays each
                           chunk by LINK_DELAY_MS, as any network does: on a bare loopback
                           the broker's first TLS flight arrives while librdkafka's first
                           SSL_connect() is still running, and librdkafka reports a refusal
                           from that call as _TRANSPORT (rd_kafka_transport_connected ->
                           rd_kafka_transport_connect_done), where the test expects the
                           _SSL it reports for the same refusal in later calls.
  0097-required            (on request) The same with ssl.client.auth=required. Every case
                           passes but the untrusted client certificate's: the broker refuses
                           it, as it must, with rustls's alert 116 (certificate_required),
                           and the test looks for the alert Kafka's JSSE sends, 42
                           (bad_certificate). rustls sends 116 in TLS 1.2 as in 1.3.
  0103-transactions        Transactions on three nodes: misuse, basic commit/abort with and
                           without compression, consume-transform-produce, fencing, empty
                           transactions, watermarks by isolation level, the abort marker's
                           leader epoch.
  0129-fetch_aborted_msgs  A read_committed consumer over aborted transactions.
  0126-oauthbearer_oidc    OAUTHBEARER with librdkafka's OIDC login (client credentials,
                           Azure IMDS-style metadata authentication, expired and invalid
                           tokens). The jwt-bearer client-assertion variations need
                           OAUTHBEARER_CLIENT_PRIVATE_KEY and a provider that accepts
                           assertions: not set, so librdkafka skips them.
  0135-sasl_credentials    SCRAM-SHA-512: wrong credentials refused, then replaced.
  0142-reauthentication    KIP-368 with connections.max.reauth.ms=10000: no message lost
                           while producers and consumers re-authenticate (SCRAM and
                           OIDC tokens), OAUTHBEARER tokens shorter and longer than the
                           session (librdkafka's unsigned tokens, Kafka's unsecured
                           validator), a re-authentication with wrong credentials
                           refused, and a re-authentication in the middle of a
                           transaction that commits or aborts.
Exit status 1 if any run failed.
"""
import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEY_PASSWORD = "client-key-password"
REAUTH_MS = 10000
# One-way delay of the relay in front of the 0097 broker: a LAN's, not a loopback's.
LINK_DELAY_MS = 2


def sh(*cmd, **kw):
    subprocess.run(cmd, check=True, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(d):
    """The trivup-style SSL_* environment, from a CA made here."""
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
       "-subj", "/CN=librdkafka-tests-ca", "-keyout", p("ca.key"), "-out", p("ca.pem"))
    for name, ext in (("broker", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
           "-keyout", p(f"{name}.key"), "-out", p(f"{name}.csr"))
        with open(p(f"{name}.ext"), "w") as f:
            f.write(ext)
        sh("openssl", "x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.pem"), "-CAkey",
           p("ca.key"), "-CAcreateserial", "-days", "30", "-extfile", p(f"{name}.ext"),
           "-out", p(f"{name}.crt"))
    with open(p("broker.pem"), "w") as f:
        f.write(open(p("broker.key")).read() + open(p("broker.crt")).read())
    # The client's key encrypted (ssl.key.password), and every encoding the test loads.
    sh("openssl", "pkcs8", "-topk8", "-in", p("client.key"), "-out", p("client.enc.key"),
       "-passout", f"pass:{KEY_PASSWORD}")
    sh("openssl", "pkcs12", "-export", "-in", p("client.crt"), "-inkey", p("client.key"),
       "-certfile", p("ca.pem"), "-out", p("client.p12"), "-passout", f"pass:{KEY_PASSWORD}")
    sh("openssl", "x509", "-in", p("client.crt"), "-outform", "DER", "-out", p("client.crt.der"))
    sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", p("client.key"), "-outform", "DER",
       "-out", p("client.key.der"))
    sh("openssl", "x509", "-in", p("ca.pem"), "-outform", "DER", "-out", p("ca.der"))
    return {
        "SSL_pkcs": p("client.p12"), "SSL_password": KEY_PASSWORD,
        "SSL_pub_pem": p("client.crt"), "SSL_priv_pem": p("client.enc.key"),
        "SSL_pub_der": p("client.crt.der"), "SSL_priv_der": p("client.key.der"),
        "SSL_ca_pem": p("ca.pem"), "SSL_ca_der": p("ca.der"), "SSL_all_cas_pem": p("ca.pem"),
    }, d


class Weir:
    """`nodes` weir processes on 127.0.0.1 whose client listener is `protocol` (with
    `sets`); a cluster's nodes also have a PLAINTEXT INTERNAL listener for replication
    and a CONTROLLER one for the quorum, and start() waits until all have registered."""

    def __init__(self, weir, workdir, name, protocol, sets, nodes=1):
        self.weir = weir
        self.procs = []
        self.ports = [free_port() for _ in range(nodes)]
        self.port = self.ports[0]
        internal = [free_port() for _ in range(nodes)]
        ctl = [free_port() for _ in range(nodes)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{ctl[i]}" for i in range(nodes))
        self.logs = []
        for i in range(nodes):
            log = os.path.join(workdir, f"{name}.broker{i + 1}.log")
            self.logs.append(log)
            if nodes == 1:
                listeners = [f"listeners={protocol}://127.0.0.1:{self.ports[i]}"]
            else:
                ls = (f"{protocol}://127.0.0.1:{self.ports[i]},INTERNAL://127.0.0.1:{internal[i]},"
                      f"CONTROLLER://127.0.0.1:{ctl[i]}")
                listeners = [f"listeners={ls}", f"advertised.listeners={ls}",
                             f"listener.security.protocol.map={protocol}:{protocol},"
                             "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
                             "inter.broker.listener.name=INTERNAL",
                             "controller.listener.names=CONTROLLER",
                             f"controller.quorum.voters={voters}", f"node.id={i + 1}"]
            cmd = [weir, "--set", f"log.dirs={os.path.join(workdir, f'{name}-data{i + 1}')}",
                   "--set", "metrics.listen=", "--set", "auto.create.topics.enable=true"]
            for s in listeners + sets:
                cmd += ["--set", s]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=open(log, "w")))
        deadline = time.monotonic() + 60
        for i, port in enumerate(self.ports):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if self.procs[i].poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"weir did not start: see {self.logs[i]}")
                    time.sleep(0.1)
        while nodes > 1:
            # Every node registered: a topic with one replica on each can be made.
            r = subprocess.run([weir, "topic", "create", f"{name}-probe", "--partitions", "1",
                                "--replication-factor", str(nodes), "--bootstrap-server",
                                f"127.0.0.1:{internal[0]}"], capture_output=True, text=True)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the cluster did not form: {r.stderr}")
            time.sleep(0.5)

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


class DelayRelay:
    """A TCP relay on 127.0.0.1:`port` to `target_port` that holds every chunk for
    `delay_ms` before passing it on, in order, in both directions (a thread with its own
    event loop, for the life of the process)."""

    def __init__(self, port, target_port, delay_ms):
        self.port = port
        self.target_port = target_port
        self.delay = delay_ms / 1000
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._serve(ready)), daemon=True).start()
        if not ready.wait(10):
            raise SystemExit("the delay relay did not start")

    async def _serve(self, ready):
        server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        ready.set()
        async with server:
            await server.serve_forever()

    async def _client(self, c_reader, c_writer):
        try:
            b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(self._pipe(c_reader, b_writer), self._pipe(b_reader, c_writer))

    async def _pipe(self, reader, writer):
        try:
            while chunk := await reader.read(65536):
                await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def run_tests(runner, workdir, name, conf, env, tests, subtests=None):
    """Runs TESTS with test.conf `conf`; (passed, summary lines)."""
    path = os.path.join(workdir, f"{name}.test.conf")
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in conf.items()))
    libs = os.path.dirname(os.path.abspath(runner))
    # Weir answers as Kafka 4 does; librdkafka's harness skips tests by broker version.
    full = dict(os.environ, **env, TESTS=tests, RDKAFKA_TEST_CONF=path, TEST_LEVEL="2",
                TEST_KAFKA_VERSION="4.0.0",
                LD_LIBRARY_PATH=f"{libs}/src:{libs}/src-cpp")
    if subtests:
        full["SUBTESTS"] = subtests
    else:
        full.pop("SUBTESTS", None)
    log = os.path.join(workdir, f"{name}.log")
    with open(log, "w") as out:
        r = subprocess.run(["./test-runner"], cwd=runner, env=full, stdout=out,
                           stderr=subprocess.STDOUT, timeout=900)
    text = open(log, errors="replace").read()
    lines = [l for l in text.splitlines()
             if re.search(r"(PASSED|FAILED|SKIPPED|SKIP)\b", l) and
             ("SUB-TEST" in l or "TEST " in l or "| " in l)]
    status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode}, log {log})"
    print(f"== {name}: TESTS={tests}" + (f" SUBTESTS={subtests!r}" if subtests else "") +
          f": {status}", flush=True)
    for l in lines[-25:]:
        print("   " + re.sub(r"\x1b\[[0-9;]*m", "", l).strip()[:160])
    return r.returncode == 0


def sasl_conf(w, mechanism, more):
    """test.conf for SASL_PLAINTEXT to `w` with `mechanism` and `more` settings."""
    return {"metadata.broker.list": f"127.0.0.1:{w.port}", "security.protocol": "sasl_plaintext",
            "sasl.mechanism": mechanism, **more}


def add_scram_user(weir, bootstrap, user, password):
    r = subprocess.run([weir, "user", "create", "--name", user, "--mechanism", "SCRAM-SHA-512",
                        "--bootstrap-server", bootstrap, "--sasl-mechanism", "PLAIN",
                        "--sasl-username", "admin"], capture_output=True, text=True,
                       env=dict(os.environ, WEIR_SASL_PASSWORD="admin-secret",
                                WEIR_USER_PASSWORD=password))
    if r.returncode:
        raise SystemExit(f"weir user create: {r.stderr}")


def start_idp(python, workdir):
    d = os.path.join(workdir, "idp")
    proc = subprocess.Popen([python, os.path.join(ROOT, "compat-tests", "python", "idp.py"),
                             "--dir", d, "--client", "librdkafka:librdkafka-secret"],
                            stdout=open(os.path.join(workdir, "idp.log"), "w"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(d, "idp.port")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the identity provider did not start")
        time.sleep(0.1)
    return proc, d, int(open(os.path.join(d, "idp.port")).read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--tests", default="0097,0103,0126,0129,0135,0142")
    a = ap.parse_args()
    wanted = set(a.tests.split(","))
    workdir = tempfile.mkdtemp(prefix="weir-librdkafka-")
    print(f"work dir {workdir}", flush=True)
    ok = True
    plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             'user_admin="admin-secret";')

    if wanted & {"0097", "0097-required"}:
        env, pki = make_pki(os.path.join(workdir, "pki"))
        runs = [("requested", "TLSv1.2"), ("requested", "TLSv1.3")] if "0097" in wanted else []
        if "0097-required" in wanted:
            runs.append(("required", "TLSv1.2"))
        for client_auth, protocol in runs:
            name = f"ssl-{client_auth}-{protocol}"
            # The broker advertises the relay: every connection of the client crosses it.
            relay_port = free_port()
            w = Weir(a.weir, workdir, name, "SSL", [
                f"ssl.keystore.location={pki}/broker.pem",
                f"ssl.truststore.location={pki}/ca.pem", f"ssl.client.auth={client_auth}",
                f"ssl.enabled.protocols={protocol}",
                f"advertised.listeners=SSL://127.0.0.1:{relay_port}"])
            relay = DelayRelay(relay_port, w.port, LINK_DELAY_MS)
            try:
                ok &= run_tests(a.runner, workdir, name, {
                    "metadata.broker.list": f"127.0.0.1:{relay.port}",
                    "security.protocol": "ssl", "ssl.ca.location": f"{pki}/ca.pem",
                    "ssl.certificate.location": f"{pki}/client.crt",
                    "ssl.key.location": f"{pki}/client.enc.key",
                    "ssl.key.password": KEY_PASSWORD,
                }, dict(env, SSL_client_auth=client_auth), "0097")
            finally:
                w.stop()

    if wanted & {"0103", "0129"}:
        # Transactions on three nodes (0103 makes topics with three replicas).
        w = Weir(a.weir, workdir, "txn", "PLAINTEXT", [], nodes=3)
        try:
            conf = {"metadata.broker.list": w.bootstrap}
            for t in ("0103", "0129"):
                if t in wanted:
                    ok &= run_tests(a.runner, workdir, f"txn-{t}", conf, {}, t)
        finally:
            w.stop()

    if wanted & {"0135", "0142"}:
        # Three nodes: 0142 makes its topic with three replicas.
        w = Weir(a.weir, workdir, "scram", "SASL_PLAINTEXT", [
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={plain}",
            f"connections.max.reauth.ms={REAUTH_MS}"], nodes=3)
        try:
            add_scram_user(a.weir, f"127.0.0.1:{w.port}", "librdkafka", "librdkafka-secret")
            conf = sasl_conf(w, "SCRAM-SHA-512", {"sasl.username": "librdkafka",
                                                  "sasl.password": "librdkafka-secret"})
            if "0135" in wanted:
                ok &= run_tests(a.runner, workdir, "scram-0135", conf, {}, "0135")
            if "0142" in wanted:
                for sub in ("message loss", "reauth failure", "middle of a txn"):
                    ok &= run_tests(a.runner, workdir, "scram-0142-" + sub.replace(" ", "-"),
                                    conf, {}, "0142", sub)
        finally:
            w.stop()

    if wanted & {"0126", "0142"}:
        idp, idp_dir, idp_port = start_idp(a.python, workdir)
        url = f"http://127.0.0.1:{idp_port}"
        w = Weir(a.weir, workdir, "oidc", "SASL_PLAINTEXT", [
            "sasl.enabled.mechanisms=OAUTHBEARER",
            f"sasl.oauthbearer.jwks.endpoint.url=file:{idp_dir}/jwks.json",
            "sasl.oauthbearer.expected.audience=weir",
            "sasl.oauthbearer.expected.issuer=weir-compat-idp",
            f"connections.max.reauth.ms={REAUTH_MS}"], nodes=3)
        try:
            conf = sasl_conf(w, "OAUTHBEARER", {
                "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.client.id": "librdkafka",
                "sasl.oauthbearer.client.secret": "librdkafka-secret",
                "sasl.oauthbearer.token.endpoint.url": f"{url}/token"})
            env = {"VALID_OIDC_URL": f"{url}/token", "EXPIRED_TOKEN_OIDC_URL": f"{url}/expired",
                   "INVALID_OIDC_URL": f"{url}/invalid"}
            if "0126" in wanted:
                ok &= run_tests(a.runner, workdir, "oidc-0126", conf, env, "0126")
            if "0142" in wanted:
                for sub in ("message loss", "oauthbearer"):
                    ok &= run_tests(a.runner, workdir, "oidc-0142-" + sub.replace(" ", "-"),
                                    conf, env, "0142", sub)
        finally:
            w.stop()
            idp.kill()

    if "0142" in wanted:
        # librdkafka's own unsigned tokens, on a listener that names Kafka's unsecured
        # validator with the scope the test asks for.
        w = Weir(a.weir, workdir, "unsecured", "SASL_PLAINTEXT", [
            "sasl.enabled.mechanisms=OAUTHBEARER",
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class="
            "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
            "OAuthBearerUnsecuredValidatorCallbackHandler",
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredValidatorRequiredScope="requiredScope";',
            f"connections.max.reauth.ms={REAUTH_MS}"], nodes=3)
        try:
            conf = sasl_conf(w, "OAUTHBEARER", {
                "sasl.oauthbearer.method": "default",
                "sasl.oauthbearer.config": "principal=admin scope=requiredScope"})
            ok &= run_tests(a.runner, workdir, "unsecured-0142-oauthbearer", conf, {}, "0142",
                            "oauthbearer")
        finally:
            w.stop()

    print("librdkafka security tests: " + ("ok" if ok else f"FAILED (logs in {workdir})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
