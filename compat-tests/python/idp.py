#!/usr/bin/env python3
"""A small OAuth 2 identity provider for the compat runner's OAUTHBEARER mode.

    idp.py --dir DIR --client ID:SECRET [--audience weir] [--issuer weir-compat-idp]

Makes an ES256 signing key, writes its public JSON Web Key Set to DIR/jwks.json (the
broker reads it through `sasl.oauthbearer.jwks.endpoint.url=file:...`), then serves the
client-credentials grant (RFC 6749 section 4.4) on 127.0.0.1 at POST /token, writing the
port to DIR/idp.port. Credentials come as HTTP Basic auth (librdkafka's OIDC) or as
client_id / client_secret form fields. The answer is
{"access_token": <JWT>, "token_type": "bearer", "expires_in": 3600} with sub = the
client id, aud, iss, iat and exp.

A client that gives a wrong secret still gets a token, signed by a second key that the
JWKS does not publish: the suites' auth_refused scenario is about the broker refusing a
token it cannot trust, which a plain 401 from here would never reach.

For librdkafka's own OIDC test (0126, scripts/librdkafka-tests) it also serves:
  GET /token?client_id=..&resource=..&api-version=..   Azure IMDS-style metadata
                        authentication: a token for client_id when all three are given;
  POST /expired         a token that expired an hour ago;
  POST /invalid         an access token that is no JWT.
Other grants (jwt-bearer client assertions) are refused with unsupported_grant_type.
"""
import argparse
import base64
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


def public_jwk(key, kid):
    numbers = key.public_key().public_numbers()

    def b64(n):
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(numbers.x), "y": b64(numbers.y)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--client", required=True, help="ID:SECRET of the known client")
    ap.add_argument("--audience", default="weir")
    ap.add_argument("--issuer", default="weir-compat-idp")
    a = ap.parse_args()
    client_id, secret = a.client.split(":", 1)
    trusted = ec.generate_private_key(ec.SECP256R1())
    untrusted = ec.generate_private_key(ec.SECP256R1())
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "jwks.json.tmp"), "w") as f:
        json.dump({"keys": [public_jwk(trusted, "compat-1")]}, f)
    os.replace(os.path.join(a.dir, "jwks.json.tmp"), os.path.join(a.dir, "jwks.json"))

    def token(sub, key, kid, lifetime=3600):
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "exp": now + lifetime, "aud": a.audience,
                  "iss": a.issuer, "scope": "kafka"}
        if lifetime < 0:
            claims["iat"] = now + lifetime - 3600
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(url.query)
            if url.path != "/token":
                self.answer(404, {"error": "not_found"})
            elif not all(q.get(k) for k in ("client_id", "resource", "api-version")):
                self.answer(400, {"error": "invalid_request",
                                  "error_description": "client_id, resource and api-version "
                                  "are required"})
            else:
                self.answer(200, {"access_token": token(q["client_id"][0], trusted, "compat-1"),
                                  "token_type": "bearer", "expires_in": "3600"})

        def do_POST(self):
            path = urllib.parse.urlparse(self.path).path
            if path == "/expired":
                self.answer(200, {"access_token": token("compat", trusted, "compat-1", -3600),
                                  "token_type": "bearer", "expires_in": 0})
                return
            if path == "/invalid":
                self.answer(200, {"access_token": "this-is-not-a-jwt", "token_type": "bearer",
                                  "expires_in": 3600})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            cid = (form.get("client_id") or [""])[0]
            csecret = (form.get("client_secret") or [""])[0]
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                cid, _, csecret = base64.b64decode(auth[6:]).decode().partition(":")
            grant = (form.get("grant_type") or ["client_credentials"])[0]
            if grant != "client_credentials":
                self.answer(400, {"error": "unsupported_grant_type"})
                return
            if not cid:
                self.answer(400, {"error": "invalid_request"})
                return
            good = cid == client_id and csecret == secret
            key, kid = (trusted, "compat-1") if good else (untrusted, "untrusted-1")
            self.answer(200, {"access_token": token(cid, key, kid), "token_type": "bearer",
                              "expires_in": 3600})

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):
            print("idp: " + fmt % args, flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(a.dir, "idp.port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(os.path.join(a.dir, "idp.port.tmp"), os.path.join(a.dir, "idp.port"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
