#!/usr/bin/env python3
"""pylxd against rxd over HTTPS, driven by tests/tests/lxd_compat_join.rs.

Two commands, each printing one JSON object on stdout:

    members.py cert CRT KEY
        Writes a client certificate and key (ECDSA P-384, self-signed, like the
        ones `lxc` makes) and prints {"fingerprint": ...}.

    members.py members ENDPOINT CRT KEY NAME
        Connects with pylxd.Client(endpoint, cert=(CRT, KEY), verify=False),
        lists the cluster members, reads member NAME and prints what it saw.

    members.py authenticate ENDPOINT CRT KEY SECRET PROFILE
        Connects untrusted, calls client.authenticate(SECRET) (a trust token or
        the trust password), then lists the member names and creates PROFILE.

    members.py cluster ENDPOINT CRT KEY PASSWORD MEMBER
        Connects untrusted, calls client.authenticate(PASSWORD), then lists and
        reads the members, reads the cluster groups raw (client.api), listens
        to lifecycle events with client.events() while it evacuates and
        restores MEMBER (raw POST .../members/MEMBER/state and the operation
        waited on through pylxd), and prints what it saw.

A pylxd or HTTP failure exits 1 with the failing request on stderr, so the Rust
test can report which request rxd did not serve.
"""

import datetime
import hashlib
import json
import os
import sys
import warnings


def make_cert(crt_path, key_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "linuxcontainers.org"),
            x509.NameAttribute(NameOID.COMMON_NAME, "pylxd-test"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA384())
    )
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"fingerprint": hashlib.sha256(der).hexdigest()}


def connect(endpoint, crt, key):
    import pylxd

    # verify=False is the point of the test (the cluster certificate is
    # self-signed); urllib3 would warn on every request.
    warnings.filterwarnings("ignore")
    # requests lets these variables override a session's verify=False
    # (psf/requests#3829), which would verify the self-signed certificate anyway.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    return pylxd.Client(endpoint=endpoint, cert=(crt, key), verify=False, timeout=30)


def report(e):
    req = e.response.request
    sys.stderr.write(
        f"pylxd request failed: {req.method} {req.url} -> "
        f"{e.response.status_code} {e.response.text}\n"
    )
    sys.exit(1)


def authenticate(endpoint, crt, key, secret, profile):
    from pylxd.exceptions import LXDAPIException

    client = connect(endpoint, crt, key)
    out = {"before": client.trusted}
    try:
        client.authenticate(secret)
        out["trusted"] = client.trusted
        out["names"] = sorted(m.server_name for m in client.cluster.members.all())
        client.profiles.create(profile, config={}, devices={})
        out["profile"] = client.profiles.get(profile).name
    except LXDAPIException as e:
        report(e)
    return out


def members(endpoint, crt, key, name):
    import pylxd
    from pylxd.exceptions import LXDAPIException

    client = connect(endpoint, crt, key)
    out = {"trusted": client.trusted, "auth": client.host_info.get("auth")}
    if not client.trusted:
        # An untrusted GET /1.0 has no "environment"; say so rather than fail on
        # the first protected request.
        out["environment"] = "environment" in client.host_info
        return out
    out["clustered"] = client.server_clustered
    out["server_name"] = client.host_info["environment"].get("server_name")
    try:
        cluster = client.cluster.get()
        out["cluster"] = {
            "server_name": cluster.server_name,
            "enabled": cluster.enabled,
        }
        out["names"] = sorted(m.server_name for m in client.cluster.members.all())
        member = client.cluster.members.get(name)
    except LXDAPIException as e:
        report(e)
    out["member"] = {
        "server_name": member.server_name,
        "status": member.status,
        "url": member.url,
        "roles": member.roles,
        "database": member.database,
        "message": member.message,
        "architecture": member.architecture,
    }
    try:
        client.cluster.members.get("no-such-member")
        out["missing"] = "found"
    except pylxd.exceptions.NotFound:
        out["missing"] = "NotFound"
    except LXDAPIException as e:
        out["missing"] = f"{e.response.status_code} {e}"
    return out


def member_state(client, name, action):
    """POST /1.0/cluster/members/NAME/state and wait on its operation: the
    operation's location and final status."""
    response = client.api.cluster.members[name].state.post(
        json={"action": action, "mode": ""}
    )
    metadata = response.json()["metadata"]
    done = client.operations.wait_for_operation(response.json()["operation"])
    return {
        "code": response.status_code,
        "location": metadata["location"],
        "description": metadata["description"],
        "status": done.status,
    }


def cluster(endpoint, crt, key, password, name):
    import threading
    import time

    from pylxd.client import EventType
    from pylxd.exceptions import LXDAPIException

    client = connect(endpoint, crt, key)
    out = {"before": client.trusted}
    try:
        client.authenticate(password)
        out["trusted"] = client.trusted
        out["names"] = sorted(m.server_name for m in client.cluster.members.all())
        out["status"] = client.cluster.members.get(name).status
        out["groups"] = client.api.cluster.groups.get().json()["metadata"]
        out["default"] = client.api.cluster.groups["default"].get().json()["metadata"]

        events = client.events(event_types={EventType.Lifecycle})
        events.connect()
        listener = threading.Thread(target=events.run, daemon=True)
        listener.start()
        # The events of MEMBER reach this member once it follows MEMBER's events;
        # profiles made on MEMBER show when that is.
        # MEMBER trusts the certificate once its replica has the trust entry.
        url = client.cluster.members.get(name).url
        other = connect(url, crt, key)
        deadline = time.monotonic() + 30
        while not other.trusted and time.monotonic() < deadline:
            time.sleep(0.1)
            other = connect(url, crt, key)
        out["relayed"] = False
        for i in range(30):
            source = f"/1.0/profiles/probe-{i}"
            other.profiles.create(f"probe-{i}", config={}, devices={})
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline and not out["relayed"]:
                out["relayed"] = any(
                    m.get("metadata", {}).get("source") == source
                    for m in list(events.messages)
                )
                time.sleep(0.05)
            if out["relayed"]:
                break
        out["evacuate"] = member_state(client, name, "evacuate")
        out["evacuated"] = client.cluster.members.get(name).status
        out["restore"] = member_state(client, name, "restore")
        out["restored"] = client.cluster.members.get(name).status
        wanted = {"cluster-member-evacuated", "cluster-member-restored"}
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = [
                (m["metadata"]["action"], m["location"])
                for m in list(events.messages)
                if m.get("metadata", {}).get("action") in wanted
            ]
            if len(seen) >= 2:
                break
            time.sleep(0.1)
        events.close()
        out["events"] = seen
    except LXDAPIException as e:
        report(e)
    return out


def main(argv):
    if len(argv) == 4 and argv[1] == "cert":
        result = make_cert(argv[2], argv[3])
    elif len(argv) == 6 and argv[1] == "members":
        result = members(argv[2], argv[3], argv[4], argv[5])
    elif len(argv) == 7 and argv[1] == "authenticate":
        result = authenticate(*argv[2:7])
    elif len(argv) == 7 and argv[1] == "cluster":
        result = cluster(*argv[2:7])
    else:
        sys.stderr.write(__doc__)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
