"""The security modes of compat-tests/run (`--security`, `--sasl-mechanism`): the CA and
certificates made with openssl, the broker settings and suite environment of each mode,
the SCRAM user the suites log in as, and the identity provider of the OAUTHBEARER mode.
Standard library only, like the runner; the provider itself runs in the venv."""
import atexit
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")


def make_pki(d):
    """A CA, a broker certificate for 127.0.0.1/localhost (broker.pem: key and chain, as
    Kafka's PEM keystore) and a client certificate (client.crt, client.key), with openssl."""
    os.makedirs(d, exist_ok=True)

    def run(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=weir compat CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in [("broker", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")]:
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
    with open(os.path.join(d, "broker.pem"), "w") as f:
        for part in ("broker.key", "broker.crt"):
            with open(os.path.join(d, part)) as src:
                f.write(src.read())
    return d


# The users of the SASL modes: `admin` (PLAIN, from the listener's JAAS settings) adds
# the SCRAM credentials of `compat`, the user the suites connect as (PLAIN knows it too).
SASL_ADMIN = ("admin", "admin-secret")
SASL_USER = ("compat", "compat-secret")


def security_setup(security, cdir, mechanism="PLAIN"):
    """(the listener's protocol, broker settings, suite environment) for `security`."""
    if security == "plaintext":
        return "PLAINTEXT", [], {}
    sets, env = [], {}
    if security in ("ssl", "mtls", "sasl_ssl"):
        pki = make_pki(os.path.join(cdir, "pki"))
        sets.append(f"ssl.keystore.location={pki}/broker.pem")
        env["WEIR_SSL_CA"] = f"{pki}/ca.pem"
    if security == "mtls":
        sets += [f"ssl.truststore.location={pki}/ca.pem", "ssl.client.auth=required"]
        env.update(WEIR_SSL_CERT=f"{pki}/client.crt", WEIR_SSL_KEY=f"{pki}/client.key")
    if security.startswith("sasl_"):
        users = " ".join(f'user_{u}="{p}"' for u, p in (SASL_ADMIN, SASL_USER))
        sets += ["sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                 f"listener.name.{security}.plain.sasl.jaas.config="
                 f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"]
        env.update(WEIR_SASL_MECHANISM=mechanism, WEIR_SASL_USERNAME=SASL_USER[0],
                   WEIR_SASL_PASSWORD=SASL_USER[1])
    # The listener is named after its protocol (Kafka's default map names it so).
    protocol = "SSL" if security in ("ssl", "mtls") else security.upper()
    return protocol, sets, env


def oauth_setup(client, security, cdir):
    """(broker settings, suite environment, identity provider process) of the
    OAUTHBEARER mode for `client`."""
    listener = security.lower()
    sets = ["sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"]
    if client == "kcat":
        return sets + [
            f"listener.name.{listener}.oauthbearer.sasl.server.callback.handler.class="
            "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
            "OAuthBearerUnsecuredValidatorCallbackHandler",
            f"listener.name.{listener}.oauthbearer.sasl.jaas.config="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredValidatorRequiredScope="kafka";',
        ], {}, None
    idp_dir = os.path.join(cdir, "idp")
    proc = subprocess.Popen([VENV_PY, os.path.join(HERE, "python", "idp.py"), "--dir", idp_dir,
                             "--client", f"{SASL_USER[0]}:{SASL_USER[1]}"],
                            stdout=open(os.path.join(cdir, "idp.log"), "w"),
                            stderr=subprocess.STDOUT)
    atexit.register(proc.kill)
    port_file = os.path.join(idp_dir, "idp.port")
    deadline = time.monotonic() + 30
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the identity provider did not start: see {cdir}/idp.log")
        time.sleep(0.1)
    with open(port_file) as f:
        port = int(f.read())
    return sets + [
        f"sasl.oauthbearer.jwks.endpoint.url=file:{idp_dir}/jwks.json",
        "sasl.oauthbearer.expected.audience=weir",
        "sasl.oauthbearer.expected.issuer=weir-compat-idp",
    ], {"WEIR_OAUTH_TOKEN_URL": f"http://127.0.0.1:{port}/token"}, proc


def add_scram_user(weir, bootstrap, env):
    """Gives the suites' user its SCRAM credentials, with `weir user create` as admin."""
    cmd = [weir, "user", "create", "--name", SASL_USER[0], "--bootstrap-server", bootstrap,
           "--sasl-mechanism", "PLAIN", "--sasl-username", SASL_ADMIN[0]]
    if env.get("WEIR_SSL_CA"):
        cmd += ["--tls-truststore", env["WEIR_SSL_CA"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, WEIR_SASL_PASSWORD=SASL_ADMIN[1],
                                WEIR_USER_PASSWORD=SASL_USER[1]))
    if r.returncode != 0:
        raise SystemExit(f"weir user create: {r.stderr.strip()}")
