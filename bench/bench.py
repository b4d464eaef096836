#!/usr/bin/env python3
"""Side-by-side benchmark of rxd and Debian's LXD. Started by bench/run; see bench/README.md.

Layout:
  Target    -- how to start, probe, bootstrap and stop one implementation (rxd or lxd).
  Daemon    -- one running daemon: its PID, data directory and unix socket.
  SCENARIOS -- the measured scenarios; each is a function (bench, target) -> {metric: value}.
               Add a scenario by writing such a function and listing it there with its metrics.
               `formation` (N members, join time per member) and `form` (N members by
               `rxd form` / `rxd join`, rxd only) are expanded into one entry per size of
               --sizes by main().

Every daemon is started in its own session, its PID is appended to WORK/pids (bench/run's EXIT
trap kills any survivor by that PID), and it is stopped by PID in a `finally`. Every wait is
bounded in time and in attempts. `form` also makes network namespaces (rxdbench-<pid>-...),
deleted in its `finally` after killing by PID what still runs in them.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024

# -------------------------------------------------------------------------------------------
# small helpers


def now():
    return time.monotonic()


def ms(seconds):
    return seconds * 1000.0


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Unavailable(Exception):
    """The implementation cannot run here; the message is the one-line reason."""


class Failed(Exception):
    """A measured step failed."""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def unix_get(path, url, timeout=2.0):
    """GET url on the unix socket at path; returns (status, body) or raises OSError."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", url, headers={"Host": "localhost"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def unix_post(path, url, body, timeout=10.0):
    """POST the JSON body to url on the unix socket at path; returns (status, body)."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request("POST", url, body=json.dumps(body),
                     headers={"Host": "localhost", "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def port_free(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def last_line(path, limit=200):
    """The last non-empty line of a log file, shortened; for one-line reasons."""
    try:
        with open(path, "rb") as f:
            lines = [l.strip() for l in f.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [l for l in lines if l]
    return lines[-1][:limit] if lines else ""


def crash_line(path, limit=120):
    """Why a daemon died: its first `panic:` or `fatal error:` line (a Go daemon's, followed by
    goroutine traces), else the last line of its log."""
    try:
        with open(path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if line.startswith(("panic:", "fatal error:")):
                    return line.strip()[:limit]
    except OSError:
        pass
    return last_line(path, limit)


def in_netns(ns, argv):
    """argv run inside network namespace ns (`ip netns exec`, which execs argv), or as is."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


def proc_status(pid, key):
    """A field of /proc/PID/status in kB (VmHWM, VmRSS), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# -------------------------------------------------------------------------------------------
# implementations


class Daemon:
    def __init__(self, target, dir_, proc, stderr_path):
        self.target = target
        self.dir = dir_
        self.proc = proc
        self.pid = proc.pid
        self.stderr_path = stderr_path
        self.socket = os.path.join(dir_, "unix.socket")

    def alive(self):
        return self.proc.poll() is None


class Target:
    """One implementation. Subclasses give the commands; the mechanics are shared."""

    name = "?"
    address = "127.0.0.1"

    def __init__(self, bench):
        self.bench = bench
        self.unavailable = None  # one-line reason once it is known not to run here

    # --- to override
    def daemon_argv(self, dir_):
        raise NotImplementedError

    def env(self, dir_):
        return dict(os.environ)

    def cli(self, dir_, *args):
        """argv of a subcommand of the daemon binary (init, waitready, shutdown)."""
        raise NotImplementedError

    def client(self, dir_, conf, *args):
        """(argv, env) of the command-line client (rxc, lxc) talking to the daemon in dir_,
        with its own configuration directory conf."""
        raise NotImplementedError

    # --- shared
    def run_cli(self, dir_, args, timeout, stdin=None):
        return self.run(self.cli(dir_, *args), self.env(dir_), args, timeout, stdin)

    def run_client(self, dir_, conf, args, timeout, ns=None):
        """The client's `args` on the daemon in dir_; inside network namespace ns if given."""
        argv, env = self.client(dir_, conf, *args)
        return self.run(in_netns(ns, argv), env, [os.path.basename(argv[0]), *args], timeout)

    def run(self, argv, env, args, timeout, stdin=None):
        if timeout <= 0:
            raise Failed(f"{self.name}: no time left for `{' '.join(args)}`")
        try:
            r = subprocess.run(argv, input=stdin, env=env, capture_output=True,
                               timeout=timeout, text=True)
        except OSError as e:
            raise Failed(f"{self.name}: cannot run `{' '.join(args)}`: {e}")
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name}: `{' '.join(args)}` still running after {timeout:.1f} s")
        if r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
            raise Failed(f"{self.name}: `{' '.join(args)}` exited {r.returncode}: "
                         f"{msg[-1] if msg else ''}")
        return r

    def start(self, dir_, ns=None):
        """Start a daemon on dir_ (inside network namespace ns if given: `ip netns exec`
        execs the daemon, so the PID is the daemon's)."""
        os.makedirs(dir_, exist_ok=True)
        stderr_path = os.path.join(dir_, "daemon.stderr")
        with open(stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(in_netns(ns, self.daemon_argv(dir_)),
                                        env=self.env(dir_), cwd=dir_,
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                        start_new_session=True)
            except OSError as e:
                raise Failed(f"{self.name}: cannot start the daemon: {e}")
        self.bench.record_pid(proc.pid)
        return Daemon(self, dir_, proc, stderr_path)

    def wait_ready(self, d, timeout):
        """Poll GET /internal/ready on the unix socket every 10 ms until it answers 200.
        The same neutral poller for both implementations. Returns seconds since `since`."""
        deadline = now() + timeout
        for _ in range(int(timeout / 0.01) + 1):
            if not d.alive():
                why = last_line(d.stderr_path)
                raise Failed(f"{self.name}: daemon exited with {d.proc.returncode}"
                             + (f": {why}" if why else ""))
            try:
                status, _ = unix_get(d.socket, "/internal/ready", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            if now() >= deadline:
                break
            time.sleep(0.01)
        why = last_line(d.stderr_path)
        raise Failed(f"{self.name}: not ready after {timeout}s" + (f": {why}" if why else ""))

    def stop(self, d, patience=30):
        """Stop a daemon by its PID: the tool's own shutdown (`--timeout patience`), then
        SIGTERM, then SIGKILL."""
        if d.alive():
            try:
                self.run_cli(d.dir, ["shutdown", "--timeout", str(patience)],
                             timeout=patience + 10)
            except Failed as e:
                log(f"{e} (stopping by signal)")
        grace = min(10, patience)
        for sig, grace in ((None, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            if sig is not None and d.alive():
                try:
                    os.kill(d.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                d.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Anything the daemon left in its session (LXD's helpers), by its process group id.
        try:
            os.killpg(d.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.bench.forget_pid(d.pid)

    def preseed(self, port):
        return f"""config:
  core.https_address: {self.address}:{port}
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root: {{path: /, pool: local, type: disk}}
cluster:
  server_name: node1
  enabled: true
"""

    def stop_all(self, daemons, patience=15):
        """Stop several daemons at once, each by its PID as in stop(): a cluster's members
        all go down together, so none waits for a quorum that the others already left."""
        threads = [threading.Thread(target=self.stop, args=(d, patience)) for d in daemons]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    def member_address(self, k, net=None):
        return f"{net or self.cluster_net}.{k}"

    def bootstrap_preseed(self, port, net=None):
        return f"""config:
  core.https_address: {self.member_address(1, net)}:{port}
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root: {{path: /, pool: local, type: disk}}
cluster:
  server_name: node1
  enabled: true
"""

    def join_preseed(self, k, port, token, net=None):
        return f"""cluster:
  enabled: true
  server_address: {self.member_address(k, net)}:{port}
  cluster_token: {token}
  member_config:
  - entity: storage-pool
    name: local
    key: source
    value: ""
"""

    def online_members(self, d):
        """(number of members, number Online) in GET /1.0/cluster/members?recursion=1 on
        d's unix socket, as `cluster list` shows them; (None, None) if it does not answer."""
        try:
            status, body = unix_get(d.socket, "/1.0/cluster/members?recursion=1", timeout=5.0)
            members = json.loads(body)["metadata"]
            if status != 200 or not isinstance(members, list):
                return None, None
            return len(members), sum(1 for m in members if m.get("status") == "Online")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, None

    def wait_online(self, d, n, deadline):
        """Poll member 1's members list every 10 ms until it has n members, all Online."""
        seen = (None, None)
        while True:
            seen = self.online_members(d)
            if seen == (n, n):
                return
            if now() >= deadline:
                raise Failed(f"{self.name}: members list of node1 shows {seen[0]} members, "
                             f"{seen[1]} online, not {n} online, at the time bound")
            time.sleep(0.01)

    def check_cluster_list(self, dir_, conf, n, timeout, ns=None):
        """The client's own `cluster list --format json` on member 1: n members, all ONLINE
        (run inside network namespace ns if given)."""
        r = self.run_client(dir_, conf, ["cluster", "list", "--format", "json"], timeout, ns)
        try:
            members = json.loads(r.stdout)
            names = sorted(m["server_name"] for m in members)
            online = [m for m in members if m["status"] == "Online"]
        except (ValueError, KeyError, TypeError) as e:
            raise Failed(f"{self.name}: cluster list --format json: unreadable ({e})")
        want = sorted(f"node{k}" for k in range(1, n + 1))
        if names != want or len(online) != n:
            raise Failed(f"{self.name}: cluster list on node1 shows {names}, "
                         f"{len(online)} online; wanted {n} online")

    def check_clustered(self, d):
        status, body = unix_get(d.socket, "/1.0/cluster", timeout=5.0)
        try:
            enabled = json.loads(body)["metadata"]["enabled"] is True
        except (ValueError, KeyError, TypeError):
            enabled = False
        if status != 200 or not enabled:
            raise Failed(f"{self.name}: after bootstrap GET /1.0/cluster answered {status}: "
                         f"{body[:200]!r}")


class Rxd(Target):
    name = "rxd"
    address = "127.0.4.1"
    cluster_net = "127.0.40"  # formation: member K on 127.0.40.K
    scale_net = "127.0.98"  # scale: member K on 127.0.98.K

    def __init__(self, bench, binary, client):
        super().__init__(bench)
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"rxd binary {binary} missing; bench/run builds it")
        self.client_binary = os.path.abspath(client)
        if not os.access(self.client_binary, os.X_OK):
            raise SystemExit(f"rxc binary {client} missing; bench/run builds it")

    def client(self, dir_, conf, *args):
        env = dict(os.environ)
        env["RXD_DIR"] = dir_
        env["RXC_CONF"] = conf
        return [self.client_binary, *args], env

    def daemon_argv(self, dir_):
        return [self.binary, "--dir", dir_]

    def cli(self, dir_, *args):
        return [self.binary, "--dir", dir_, *args]


class Lxd(Target):
    name = "lxd"
    address = "127.0.4.2"
    cluster_net = "127.0.41"  # formation: member K on 127.0.41.K
    scale_net = "127.0.99"  # scale: member K on 127.0.99.K

    def __init__(self, bench, binary, client):
        super().__init__(bench)
        self.binary = os.path.abspath(binary) if binary else ""
        self.client_binary = os.path.abspath(client) if client else ""
        if not binary:
            self.unavailable = "no lxd binary (apt-get install -y lxd lxd-client)"
        self.no_client = None if client else "no lxc binary (apt-get install -y lxd-client)"

    def client(self, dir_, conf, *args):
        if self.no_client:
            raise Failed(f"lxd: {self.no_client}")
        env = self.env(dir_)
        env["LXD_CONF"] = conf
        return [self.client_binary, *args], env

    def env(self, dir_):
        e = dict(os.environ)
        e["LXD_DIR"] = dir_
        return e

    def daemon_argv(self, dir_):
        # --logfile puts the directory on the command line too, so bench/run's trap can tell
        # the process is ours before it kills it.
        return [self.binary, "--group", "root", "--logfile", os.path.join(dir_, "lxd.log")]

    def cli(self, dir_, *args):
        return [self.binary, *args]


# -------------------------------------------------------------------------------------------
# scenarios


def single_node(bench, t):
    """Start a daemon on an empty directory, wait until it answers, bootstrap a one-member
    cluster with `init --preseed`, read the daemon's peak RSS, stop it."""
    dir_ = bench.fresh_dir(t.name)
    port = bench.fresh_port(t)
    t0 = now()
    d = t.start(dir_)
    try:
        t.wait_ready(d, timeout=30)
        ready = now() - t0
        t1 = now()
        t.run_cli(dir_, ["init", "--preseed"], timeout=60, stdin=t.preseed(port))
        boot = now() - t1
        hwm = proc_status(d.pid, "VmHWM")
        t.check_clustered(d)
    finally:
        t.stop(d)
    return {"start->ready": ms(ready), "bootstrap": ms(boot),
            "daemon VmHWM": hwm / 1024.0 if hwm is not None else None}


def own_waitready(bench, t):
    """Start a daemon and time the tool's own `waitready` started right after it: what a user
    or a systemd unit sees. LXD's waitready polls every 500 ms, rxd's every 50 ms."""
    dir_ = bench.fresh_dir(t.name)
    t0 = now()
    d = t.start(dir_)
    try:
        t.run_cli(dir_, ["waitready", "--timeout", "30"], timeout=40)
        took = now() - t0
    finally:
        t.stop(d)
    return {"start->waitready": ms(took)}


NEWCONN_REQUESTS = 100


def new_connections(bench, t):
    """Bootstrap a one-member cluster, trust a client certificate, then send
    NEWCONN_REQUESTS requests `GET /1.0/cluster/members?recursion=1`, each on a new HTTPS
    connection (Python's http.client, the client certificate), one after another: the time of
    each from connect to the last byte of the answer. A server that leaves Nagle's algorithm
    on its sockets makes some of them wait for a delayed ACK (~40 ms)."""
    import base64
    import ssl
    dir_ = bench.fresh_dir(t.name)
    port = bench.fresh_port(t)
    crt, key = os.path.join(dir_, "bench.crt"), os.path.join(dir_, "bench.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:secp384r1", "-nodes", "-days", "1", "-subj", "/CN=bench",
                    "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=30)
    d = t.start(dir_)
    try:
        t.wait_ready(d, timeout=30)
        t.run_cli(dir_, ["init", "--preseed"], timeout=60, stdin=t.preseed(port))
        with open(crt) as f:
            pem = f.read()
        der = ssl.PEM_cert_to_DER_cert(pem)
        status, body = unix_post(os.path.join(dir_, "unix.socket"), "/1.0/certificates",
                                 {"type": "client", "name": "bench",
                                  "certificate": base64.b64encode(der).decode()})
        if status not in (200, 201, 202):
            raise Failed(f"{t.name}: trusting the client certificate: {status} {body[:200]!r}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(crt, key)
        took = []
        for _ in range(NEWCONN_REQUESTS):
            t0 = now()
            conn = http.client.HTTPSConnection(t.address, port, context=ctx, timeout=10)
            try:
                conn.request("GET", "/1.0/cluster/members?recursion=1")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise Failed(f"{t.name}: GET /1.0/cluster/members answered {resp.status}")
            finally:
                conn.close()
            took.append(now() - t0)
        took.sort()
        p50 = took[len(took) // 2]
        p90 = took[(len(took) * 9) // 10 - 1]
    finally:
        t.stop(d)
    return {"new conn p50": ms(p50), "new conn p90": ms(p90)}


class OutOfTime(Failed):
    """A formation did not finish within its time bound."""


def formation(bench, t, n):
    """Form an n-member cluster the way a user does: start n daemons on empty directories and
    wait until each answers; then (timed from here) bootstrap node1 with `init --preseed`,
    and join node2..nodeN one after another, each with a new token from `cluster add nodeK
    --quiet` on node1 and `init --preseed` on nodeK; formation ends when node1's members list
    shows n members, all Online. The client's own `cluster list` on node1 checks it after.
    Member K listens on CLUSTER_NET.K. Everything is bounded by --formation-timeout."""
    bound = bench.formation_timeout
    deadline = now() + bound

    def left(cap):
        return min(cap, deadline - now())

    port = bench.cluster_port(t, n)
    dirs = [bench.fresh_dir(f"{t.name}-n{n}-node{k}") for k in range(1, n + 1)]
    conf = bench.fresh_dir(f"{t.name}-n{n}-client")
    daemons = []
    joins = []
    try:
        try:
            for dir_ in dirs:
                daemons.append(t.start(dir_))
            for d in daemons:
                t.wait_ready(d, timeout=left(120))
            t0 = now()
            t.run_cli(dirs[0], ["init", "--preseed"], timeout=left(120),
                      stdin=t.bootstrap_preseed(port))
            for k in range(2, n + 1):
                token = t.run_client(dirs[0], conf, ["cluster", "add", f"node{k}", "--quiet"],
                                     timeout=left(60)).stdout.strip()
                if not token or len(token.split()) != 1:
                    raise Failed(f"{t.name}: cluster add node{k} printed {token[:80]!r}, "
                                 "not a token")
                t1 = now()
                t.run_cli(dirs[k - 1], ["init", "--preseed"], timeout=left(300),
                          stdin=t.join_preseed(k, port, token))
                joins.append(now() - t1)
                log(f"  {t.name} N={n}: node{k} joined in {ms(joins[-1]):.0f} ms")
            t.wait_online(daemons[0], n, deadline)
            formed = now() - t0
        except Failed as e:
            if now() >= deadline - 1:
                raise OutOfTime(f"{t.name}: N={n} not formed within the {bound:.0f} s bound "
                                f"({len(joins) + 1} of {n} members in; last step: "
                                f"{str(e).removeprefix(t.name + ': ')[:80]})")
            raise
        t.check_cluster_list(dirs[0], conf, n, timeout=60)
    finally:
        t.stop_all(daemons)
        for dir_ in dirs + [conf]:
            bench.cleanup_dir(dir_)
    return {f"formation N={n}": ms(formed),
            f"join/member N={n}": [ms(j) for j in joins],
            f"last join N={n}": ms(joins[-1]) if joins else None}


def formation_rows(n):
    return [(f"formation N={n}", "ms"), (f"join/member N={n}", "ms"), (f"last join N={n}", "ms")]


# form: `rxd form` on node1 and `rxd join` on the others, all at once, from one preseed. Each
# member needs an address of its own on an interface, so each runs in a network namespace of
# its own: eth0 at FORM_NET.K/24, a veth pair to bridge hub0 in a hub namespace.
FORM_NET = "192.0.2"
FORM_PASSPHRASE = "rxd bench formation passphrase"  # >= 12 characters
# What a joiner prints once the passphrase exchange with the initiator succeeded.
FORM_TRUSTED = "Trusted node1 ("
# The goal: form within FORM_GOAL_BASE + FORM_GOAL_PER_JOINER per joiner of rxd by hand (ms).
FORM_GOAL_BASE = 1000.0
FORM_GOAL_PER_JOINER = 50.0


class Netns:
    """The network namespaces of one `form` run: PREFIX-hub with bridge hub0, and PREFIX-mK
    per member K, joined to hub0 by a veth pair (vhK in the hub, eth0 at FORM_NET.K/24 in the
    member); lo up in each. PREFIX is rxdbench-<bench pid>-<run>. delete() kills, by PID,
    whatever still runs in them, then deletes them."""

    def __init__(self, t, prefix, n):
        self.t = t
        self.hub = f"{prefix}-hub"
        self.members = [f"{prefix}-m{k}" for k in range(1, n + 1)]
        self.made = []

    def ip(self, *args):
        try:
            r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Failed(f"{self.t.name}: `ip {' '.join(args)}`: {e}")
        if r.returncode != 0:
            raise Failed(f"{self.t.name}: `ip {' '.join(args)}` exited {r.returncode}: "
                         f"{r.stderr.strip()[:160]}")
        return r.stdout

    def add(self, name):
        self.ip("netns", "add", name)
        self.made.append(name)
        self.ip("-n", name, "link", "set", "lo", "up")

    def create(self):
        self.add(self.hub)
        self.ip("-n", self.hub, "link", "add", "hub0", "type", "bridge")
        self.ip("-n", self.hub, "link", "set", "hub0", "up")
        for k, ns in enumerate(self.members, 1):
            self.add(ns)
            self.ip("-n", self.hub, "link", "add", f"vh{k}", "type", "veth", "peer", "name",
                    "eth0", "netns", ns)
            self.ip("-n", self.hub, "link", "set", f"vh{k}", "master", "hub0", "up")
            self.ip("-n", ns, "addr", "add", f"{FORM_NET}.{k}/24", "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")

    def delete(self):
        for ns in reversed(self.made):
            try:
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True, timeout=30).stdout.split()
            except (OSError, subprocess.TimeoutExpired):
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError, PermissionError):
                    pass
            try:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as e:
                log(f"cannot delete network namespace {ns}: {e}")
        self.made = []


class FormCommand:
    """One `rxd form` / `rxd join` run inside a member's namespace, the preseed on its
    standard input; its output lines are read as they come, each with its arrival time."""

    def __init__(self, bench, t, dir_, ns, k, preseed):
        self.bench = bench
        self.k = k
        self.command = "form" if k == 1 else "join"
        env = dict(os.environ)
        env["RXD_DIR"] = dir_
        # `--dir` as well as RXD_DIR: the directory on the command line lets bench/run's trap
        # tell the process is ours.
        argv = in_netns(ns, t.cli(dir_, self.command, "--name", f"node{k}", "--preseed"))
        self.stdout, self.stderr = [], []  # [(arrival, line)]
        self.closed = None  # when its standard output closed: its exit
        self.spawned = now()
        try:
            self.proc = subprocess.Popen(argv, env=env, cwd=dir_, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         start_new_session=True)
        except OSError as e:
            raise Failed(f"{t.name}: cannot run `rxd {self.command}` on node{k}: {e}")
        bench.record_pid(self.proc.pid)
        self.readers = [threading.Thread(target=self.read, args=(f, into), daemon=True)
                        for f, into in ((self.proc.stdout, self.stdout),
                                        (self.proc.stderr, self.stderr))]
        for r in self.readers:
            r.start()
        try:
            self.proc.stdin.write(preseed.encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it exited already; its exit status and output say why

    def read(self, f, into):
        for raw in iter(f.readline, b""):
            into.append((now(), raw.decode("utf-8", "replace").rstrip("\n")))
        if into is self.stdout:
            self.closed = now()
        f.close()

    def trusted_after(self):
        """Seconds from the spawn until the `Trusted node1 (` line, or None."""
        for at, line in list(self.stdout):
            if line.startswith(FORM_TRUSTED):
                return at - self.spawned
        return None

    def returncode(self):
        return self.proc.poll()

    def wait(self, timeout):
        """Wait for the exit and the end of its output; False if still running at timeout."""
        try:
            self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        for r in self.readers:
            r.join(timeout=5)
        return True

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.bench.forget_pid(self.proc.pid)

    def said(self, limit=40):
        """Its exit status and its last `limit` lines of output, for a failure's report."""
        rc = self.proc.poll()
        status = "still running" if rc is None else f"exited {rc}"
        lines = sorted(self.stdout + [(at, "stderr: " + l) for at, l in self.stderr])
        body = "\n".join(f"    {at - self.spawned:8.3f}s {l}" for at, l in lines[-limit:])
        return f"  node{self.k} `rxd {self.command}` ({status}):\n{body or '    (no output)'}"

    def last_line(self):
        for _, line in reversed(self.stderr + self.stdout):
            if line.strip():
                return line.strip()[:120]
        return ""


def form_preseed(n, pass_file):
    """The formation preseed, the same on every server."""
    members = "".join(f"- name: node{k}\n" for k in range(1, n + 1))
    return f"""initiator: node1
initiator_address: {FORM_NET}.1
interface: eth0
passphrase_file: {pass_file}
window: 5m
members:
{members}storage_pools:
- name: local
  driver: dir
"""


def form(bench, t, n):
    """Form an n-member cluster with one command per server: make the namespaces, start n
    daemons (each `ip netns exec NS rxd --dir DIR`) and wait until each answers; then (timed
    from here) spawn `rxd form --name node1 --preseed` on node1 and `rxd join --name nodeK
    --preseed` on every other, all at once, the same preseed on each one's standard input;
    formation ends when node1's members list shows n members, all Online, as in `formation`.
    Each joiner's discovery + trust: from its spawn until it prints `Trusted node1 (`. Then,
    untimed, every command must exit 0 and `rxc cluster list` in node1's namespace show
    node1..nodeN Online. Bounded by --formation-timeout, namespaces and daemon starts
    included. rxd only: LXD has no such command."""
    if t.name != "rxd":
        raise Failed(f"{t.name}: no `form` command")
    bound = bench.formation_timeout
    deadline = now() + bound

    def left(cap):
        return min(cap, deadline - now())

    nets = Netns(t, bench.netns_prefix(), n)
    dirs = [bench.fresh_dir(f"{t.name}-form{n}-node{k}") for k in range(1, n + 1)]
    conf = bench.fresh_dir(f"{t.name}-form{n}-client")
    pass_file = os.path.join(conf, "form.pass")
    daemons = []
    runs = []
    phase = "setting up"
    try:
        try:
            nets.create()
            fd = os.open(pass_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(FORM_PASSPHRASE + "\n")
            for k, dir_ in enumerate(dirs, 1):
                daemons.append(t.start(dir_, ns=nets.members[k - 1]))
            for d in daemons:
                t.wait_ready(d, timeout=left(120))
            preseed = form_preseed(n, pass_file)
            phase = "forming"
            t0 = now()
            for k, dir_ in enumerate(dirs, 1):
                runs.append(FormCommand(bench, t, dir_, nets.members[k - 1], k, preseed))
            seen = (None, None)
            while True:
                seen = t.online_members(daemons[0])
                if seen == (n, n):
                    break
                failed = [r for r in runs if r.returncode() not in (None, 0)]
                if failed:
                    r = failed[0]
                    raise Failed(f"{t.name}: N={n}: node{r.k}'s `rxd {r.command}` exited "
                                 f"{r.returncode()}: {r.last_line()}")
                dead = [k for k, d in enumerate(daemons, 1) if not d.alive()]
                if dead:
                    why = crash_line(daemons[dead[0] - 1].stderr_path)
                    raise Failed(f"{t.name}: N={n}: node{dead[0]}'s daemon exited"
                                 + (f": {why}" if why else ""))
                if now() >= deadline:
                    raise Failed(f"{t.name}: N={n}: node1 lists {seen[0]} members, {seen[1]} "
                                 f"online, not {n} online, at the time bound")
                time.sleep(0.01)
            formed = now() - t0
            phase = "after the formation"
            for r in runs:
                if not r.wait(left(120)):
                    raise Failed(f"{t.name}: N={n}: node{r.k}'s `rxd {r.command}` still "
                                 f"running {now() - t0:.0f} s after the start, the cluster "
                                 "formed")
                if r.returncode() != 0:
                    raise Failed(f"{t.name}: N={n}: node{r.k}'s `rxd {r.command}` exited "
                                 f"{r.returncode()}: {r.last_line()}")
            exited = max(r.closed or now() for r in runs) - t0
            trusted = []
            for r in runs[1:]:
                took = r.trusted_after()
                if took is None:
                    raise Failed(f"{t.name}: N={n}: node{r.k}'s `rxd join` exited 0 without "
                                 f"a line `{FORM_TRUSTED}...`")
                trusted.append(took)
            log(f"  {t.name} N={n}: formed in {ms(formed):.0f} ms (every command exited after "
                f"{ms(exited):.0f} ms); discovery + trust per joiner "
                f"{ms(min(trusted)):.0f}-{ms(max(trusted)):.0f} ms")
            t.check_cluster_list(dirs[0], conf, n, timeout=left(60), ns=nets.members[0])
        except Failed as e:
            if runs:
                log(f"{t.name} form N={n} failed {phase}; the commands said:\n"
                    + "\n".join(r.said() for r in runs))
            for k, d in enumerate(daemons, 1):
                why = last_line(d.stderr_path)
                if why:
                    log(f"  node{k}'s daemon, last log line: {why}")
            if now() >= deadline - 1 and not isinstance(e, OutOfTime):
                raise OutOfTime(f"{t.name}: N={n} not formed by `rxd form` within the "
                                f"{bound:.0f} s bound ({phase}; "
                                f"{str(e).removeprefix(t.name + ': ')[:80]})")
            raise
    finally:
        for r in runs:
            r.kill()
        t.stop_all(daemons)
        nets.delete()
        for dir_ in dirs + [conf]:
            bench.cleanup_dir(dir_)
    return {f"form N={n}": ms(formed),
            f"discovery+trust N={n}": [ms(x) for x in trusted]}


def form_rows(n):
    return [(f"form N={n}", "ms"), (f"discovery+trust N={n}", "ms")]


# scale: cluster database sizes (profiles) of --profiles, and the concurrent writers of the load
SCALE_SIZES = (10_000, 100_000)
SCALE_CLIENTS = 8


def unix_request(path, method, url, body=None, timeout=30.0):
    """One request on the unix socket at path, with a JSON body if given; (status, body)."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        headers = {"Host": "localhost"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, url, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def write_profiles(t, daemons, count, deadline, clients=SCALE_CLIENTS):
    """POST /1.0/profiles `count` times (p-000000, p-000001, ...) from `clients` threads, thread
    k on the unix socket of daemons[k % len(daemons)]. Bounded in count (each thread takes the
    next name until none is left) and by `deadline`. Returns the seconds it took."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "error": None}
    t0 = now()

    def worker(k):
        d = daemons[k % len(daemons)]
        while True:
            with lock:
                if state["error"] or state["next"] >= count:
                    return
                i = state["next"]
                state["next"] += 1
            left = deadline - now()
            try:
                if left <= 0:
                    raise TimeoutError
                status, body = unix_request(d.socket, "POST", "/1.0/profiles",
                                            {"name": f"p-{i:06d}"}, timeout=min(60.0, left))
                err = None if 200 <= status < 300 else \
                    f"POST /1.0/profiles p-{i:06d} on node{k % len(daemons) + 1} answered " \
                    f"{status}: {body[:160]!r}"
            except (OSError, TimeoutError) as e:
                err = f"POST /1.0/profiles p-{i:06d} on node{k % len(daemons) + 1}: " \
                      f"{e or 'no time left'}"
                if now() >= deadline:
                    err = "time bound"
            with lock:
                if err:
                    state["error"] = state["error"] or err
                    return
                state["done"] += 1

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for th in threads:
        th.start()
    last = now()
    while any(th.is_alive() for th in threads):
        for th in threads:
            th.join(timeout=0.5)
        if now() - last >= 30:
            last = now()
            log(f"  {t.name}: {state['done']} of {count} profiles after {now() - t0:.0f} s")
    took = now() - t0
    if state["error"] == "time bound":
        raise OutOfTime(f"{t.name}: {state['done']} of {count} profiles written within the "
                        f"time bound")
    if state["error"]:
        raise Failed(f"{t.name}: {state['error']} (after {state['done']} writes)")
    return took


def leader_of(t, daemons):
    """The daemon holding the database-leader role in node1's members list."""
    status, body = unix_get(daemons[0].socket, "/1.0/cluster/members?recursion=1", timeout=30)
    try:
        for m in json.loads(body)["metadata"]:
            if "database-leader" in (m.get("roles") or []):
                return daemons[int(m["server_name"].removeprefix("node")) - 1]
    except (ValueError, KeyError, TypeError, IndexError):
        pass
    raise Failed(f"{t.name}: no database-leader in node1's members list ({status})")


def profile_count(d, timeout=30.0):
    """How many profiles d lists (GET /1.0/profiles), or None if it does not answer."""
    try:
        status, body = unix_request(d.socket, "GET", "/1.0/profiles", timeout=timeout)
        urls = json.loads(body)["metadata"]
        return len(urls) if status == 200 and isinstance(urls, list) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RssSampler(threading.Thread):
    """Samples VmRSS of one PID every 10 ms until stopped; keeps the peak (kB)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = None
        self.samples = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            v = proc_status(self.pid, "VmRSS")
            if v is not None:
                self.peak = v if self.peak is None else max(self.peak, v)
                self.samples += 1
            self.halt.wait(0.01)

    def stop(self):
        self.halt.set()
        self.join(timeout=5)


def scale(bench, t, size):
    """A cluster database of `size` profiles on 3 members, then a 4th joins. Start 4 daemons,
    bootstrap node1 and join node2 and node3 by token (untimed); write `size` profiles from
    SCALE_CLIENTS concurrent clients over the 3 members' unix sockets (timed: writes/s); then,
    with a new token from node1, time node4's `init --preseed` (join), and go on until node4
    lists size + 1 profiles (join->reads all) and node1 lists 4 members Online. The leader's
    VmRSS is sampled every 10 ms from just before the join until then: its growth is the peak
    minus the value just before. Members on SCALE_NET.K; bounded by --scale-timeout."""
    bound = bench.scale_timeout
    deadline = now() + bound

    def left(cap):
        return min(cap, deadline - now())

    net = t.scale_net
    port = bench.cluster_port(t, 4, net)
    dirs = [bench.fresh_dir(f"{t.name}-scale{size}-node{k}") for k in range(1, 5)]
    conf = bench.fresh_dir(f"{t.name}-scale{size}-client")
    daemons = []
    sampler = None
    out = {}  # metric -> value, filled as the run goes

    def token(k):
        tok = t.run_client(dirs[0], conf, ["cluster", "add", f"node{k}", "--quiet"],
                           timeout=left(60)).stdout.strip()
        if not tok or len(tok.split()) != 1:
            raise Failed(f"{t.name}: cluster add node{k} printed {tok[:80]!r}, not a token")
        return tok

    try:
        try:
            for dir_ in dirs:
                daemons.append(t.start(dir_))
            for d in daemons:
                t.wait_ready(d, timeout=left(120))
            t.run_cli(dirs[0], ["init", "--preseed"], timeout=left(120),
                      stdin=t.bootstrap_preseed(port, net))
            for k in (2, 3):
                t.run_cli(dirs[k - 1], ["init", "--preseed"], timeout=left(300),
                          stdin=t.join_preseed(k, port, token(k), net))
            t.wait_online(daemons[0], 3, deadline)
            log(f"  {t.name}: writing {size} profiles")
            wrote = write_profiles(t, daemons[:3], size, deadline)
            out[f"write rate {size}"] = size / wrote
            log(f"  {t.name}: {size} profiles in {wrote:.1f} s ({size / wrote:.0f}/s)")
            leader = leader_of(t, daemons[:3])
            tok4 = token(4)
            rss_before = proc_status(leader.pid, "VmRSS")
            hwm_before = proc_status(leader.pid, "VmHWM")
            if rss_before is not None:
                out[f"leader VmRSS {size}"] = rss_before / 1024.0
            sampler = RssSampler(leader.pid)
            sampler.start()
            t1 = now()
            t.run_cli(dirs[3], ["init", "--preseed"], timeout=left(600),
                      stdin=t.join_preseed(4, port, tok4, net))
            out[f"join after {size}"] = ms(now() - t1)
            log(f"  {t.name}: node4 joined after {size} writes in "
                f"{out[f'join after {size}']:.0f} ms")
            seen = None
            while True:
                seen = profile_count(daemons[3], timeout=max(1.0, left(30)))
                if seen == size + 1:
                    break
                dead = [k + 1 for k, d in enumerate(daemons) if not d.alive()]
                if dead:
                    why = crash_line(daemons[dead[0] - 1].stderr_path)
                    raise Failed(f"{t.name}: node{dead[0]} exited after node4's join"
                                 + (f": {why}" if why else ""))
                if now() >= deadline:
                    raise Failed(f"{t.name}: node4 lists {seen} profiles, not {size + 1}, "
                                 "at the time bound")
                time.sleep(0.1)
            out[f"join->reads all {size}"] = ms(now() - t1)
            t.wait_online(daemons[0], 4, deadline)
        except Failed as e:
            if now() >= deadline - 1 and not isinstance(e, OutOfTime):
                e = OutOfTime(f"{t.name}: scale {size} not done within the {bound:.0f} s "
                              f"bound ({str(e).removeprefix(t.name + ': ')[:80]})")
            # What was measured before the failure (the write rate, the leader's memory
            # during a join that failed) still goes in the table.
            e.partial = out
            raise e
        finally:
            if sampler is not None:
                sampler.stop()
                hwm_after = proc_status(leader.pid, "VmHWM")
                if sampler.peak is not None and rss_before is not None:
                    out[f"leader RSS growth {size}"] = (sampler.peak - rss_before) / 1024.0
                if hwm_after is not None and hwm_before is not None:
                    out[f"leader VmHWM growth {size}"] = (hwm_after - hwm_before) / 1024.0
    finally:
        t.stop_all(daemons)
        for dir_ in dirs + [conf]:
            bench.cleanup_dir(dir_)
    return out


def scale_rows(size):
    return [(f"write rate {size}", "writes/s"), (f"join after {size}", "ms"),
            (f"join->reads all {size}", "ms"), (f"leader VmRSS {size}", "MiB"),
            (f"leader RSS growth {size}", "MiB"), (f"leader VmHWM growth {size}", "MiB")]


FORMATION_SIZES = (3, 5, 8, 16)
# The sizes of `form` without --sizes (the issue's: 3, 8 and 16 servers).
FORM_SIZES = (3, 8, 16)
# Formations of this many members or more are measured once per target (they are expensive);
# the same for `form`.
FORMATION_ONCE_FROM = 8
# The warm-up of formation (and of form) is one formation of this many members, whatever --sizes.
FORMATION_WARMUP_SIZE = 2

# name -> (function, [(metric, unit)]). Rows are printed in this order.
# To add a scenario: write a function like those above that returns {metric: value} (a value
# may be a list: several samples of one run) and list it here. `formation` and `form` are the
# exceptions: main() expands each into one entry per size in --sizes, each with
# formation_rows(n) or form_rows(n). `form` is rxd's alone: its entries carry only="rxd".
SCENARIOS = {
    "single": (single_node, [("start->ready", "ms"), ("bootstrap", "ms"),
                             ("daemon VmHWM", "MiB")]),
    "waitready": (own_waitready, [("start->waitready", "ms")]),
    "newconn": (new_connections, [("new conn p50", "ms"), ("new conn p90", "ms")]),
    "formation": (formation, None),
    "form": (form, None),
    "scale": (scale, None),
}
# What runs without --scenarios; `scale` takes minutes per size and is asked for by name.
DEFAULT_SCENARIOS = ("single", "waitready", "newconn", "formation", "form")


# -------------------------------------------------------------------------------------------
# the run


class Bench:
    def __init__(self, work):
        self.work = work
        self.pidfile = os.path.join(work, "pids")
        self.counter = 0
        self.ports = {}
        self.formation_timeout = 600.0
        self.scale_timeout = 1800.0
        self.netns_runs = 0
        self.pid_lock = threading.Lock()  # stop_all() forgets PIDs from several threads

    def record_pid(self, pid):
        with self.pid_lock, open(self.pidfile, "a") as f:
            f.write(f"{pid}\n")

    def forget_pid(self, pid):
        with self.pid_lock:
            try:
                with open(self.pidfile) as f:
                    pids = [l.strip() for l in f if l.strip() and l.strip() != str(pid)]
                with open(self.pidfile, "w") as f:
                    f.write("".join(p + "\n" for p in pids))
            except OSError:
                pass

    def netns_prefix(self):
        """A prefix for the network namespaces of one run, no other process's:
        rxdbench-<this process's pid>-<run>."""
        self.netns_runs += 1
        return f"rxdbench-{os.getpid()}-{self.netns_runs}"

    def fresh_dir(self, name):
        self.counter += 1
        path = os.path.join(self.work, f"{name}-{self.counter}")
        os.makedirs(path)
        return path

    def fresh_port(self, t):
        """A free port on the target's loopback address; a new one per run so no run waits
        for the previous one's sockets."""
        port = self.ports.get(t.name, 8443)
        for _ in range(200):
            port += 1
            if port_free(t.address, port):
                self.ports[t.name] = port
                return port
        raise Failed(f"no free port on {t.address}")

    def cluster_port(self, t, n, net=None):
        """A port free on all n member addresses of the target (CLUSTER_NET.1..n, or
        NET.1..n); a new one per formation, so that none waits for the previous one's
        sockets."""
        key = f"{t.name}-{net or 'cluster'}"
        port = self.ports.get(key, 8442)
        for _ in range(200):
            port += 1
            if all(port_free(t.member_address(k, net), port) for k in range(1, n + 1)):
                self.ports[key] = port
                return port
        raise Failed(f"{t.name}: no port free on all of {net or t.cluster_net}.1-{n}")

    def cleanup_dir(self, path):
        """Remove a daemon's directory once it is stopped, after unmounting what LXD mounted
        in it (tmpfs on shmounts and devlxd, left behind if it was killed)."""
        prefix = os.path.join(path, "")
        try:
            with open("/proc/mounts") as f:
                mounts = [l.split()[1] for l in f if len(l.split()) > 1]
        except OSError:
            mounts = []
        for m in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            try:
                subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(path, ignore_errors=True)


def fmt(v, unit):
    if v is None:
        return "-"
    return f"{v:.1f}" if unit == "MiB" else f"{v:.0f}"


def summarize(values, unit):
    vals = [v for v in values if v is not None]
    if not vals:
        return None, "-"
    med = statistics.median(vals)
    return med, f"{fmt(med, unit)} [{fmt(min(vals), unit)}-{fmt(max(vals), unit)}]"


def parse_sizes(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--sizes {text!r}: comma-separated numbers, like 3,5")
    if not sizes or any(not 2 <= n <= 16 for n in sizes):
        raise SystemExit("--sizes: each between 2 and 16 (member K uses 127.0.4x.K, or "
                         f"{FORM_NET}.K in form)")
    return sorted(set(sizes))


def parse_profiles(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--profiles {text!r}: comma-separated numbers, like 10000,100000")
    if not sizes or any(not 1 <= n <= 1_000_000 for n in sizes):
        raise SystemExit("--profiles: each between 1 and 1000000")
    return sorted(set(sizes))


class Entry:
    """One line of the plan: a scenario (or one formation size), its rows and its run count.
    `cell` entries (scale, form) fail cell by cell, for rxd as for LXD: the other cells are
    still measured. `scenario` is the name in SCENARIOS; `only`, the one target that runs it
    (form: rxd), else None."""

    def __init__(self, key, fn, rows, runs, size=None, cell=False, scenario=None, only=None):
        self.key, self.fn, self.rows, self.runs, self.size = key, fn, rows, runs, size
        self.cell = cell
        self.scenario = scenario or key
        self.only = only

    def runs_on(self, t):
        return self.only is None or self.only == t.name


def form_comparison(plan, forms, results, rxd_failure, why_not, lxd):
    """The lines of the `form` against by-hand block: one column per size of form, the medians
    of this run's form, rxd's and LXD's formation (by hand) of the same N, their ratios, the
    discovery + trust per joiner, the commands typed and the goal."""
    by_hand = {e.size: e for e in plan if e.scenario == "formation"}

    def med(target, metric):
        vals = [v for v in results[target].get(metric, []) if v is not None]
        return statistics.median(vals) if vals else None

    def ratio(x, y):
        return f"{x / y:.2f}" if x is not None and y else "-"

    cols = []
    missing = []
    for e in forms:
        n = e.size
        f = med("rxd", f"form N={n}")
        h = med("rxd", f"formation N={n}")
        hand = by_hand.get(n)
        if hand is None:
            missing.append(str(n))
        lx = None
        if hand is not None and not why_not(lxd, hand):
            lx = med("lxd", f"formation N={n}")
        goal = (h + FORM_GOAL_BASE + FORM_GOAL_PER_JOINER * (n - 1)) if h is not None else None
        met = "-" if f is None or goal is None else ("yes" if f <= goal else "no")
        _, trust = summarize(results["rxd"].get(f"discovery+trust N={n}", []), "ms")
        cols.append([f"N={n}",
                     fmt(f, "ms") if f is not None or not rxd_failure(e) else "failed",
                     fmt(h, "ms"),
                     fmt(lx, "ms"),
                     ratio(f, h),
                     ratio(f, lx),
                     trust,
                     f"{n}, {2 * n - 1}",
                     f"{fmt(goal, 'ms')} {met}" if goal is not None else "-"])
    names = ["form vs by hand (medians)", "rxd form (ms)", "rxd by hand (ms)",
             "lxd by hand (ms)", "form / rxd by hand", "form / lxd by hand",
             "discovery+trust per joiner (ms)", "commands typed (form, by hand)",
             "goal: form <= (ms), met"]
    rows = [[name] + [c[i] for c in cols] for i, name in enumerate(names)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                     for i, c in enumerate(r)) for r in rows]
    out.append(f"goal: form within {FORM_GOAL_BASE / 1000:.0f} s + {FORM_GOAL_PER_JOINER:.0f} ms "
               "per joiner of rxd by hand, i.e. form <= rxd by hand + "
               f"{FORM_GOAL_BASE:.0f} + {FORM_GOAL_PER_JOINER:.0f} x (N-1) ms")
    out.append("by hand: the formation rows (1 bootstrap + a token and a join per joiner, 2N-1 "
               "commands); form: one command per server, N")
    if missing:
        out.append(f"N={','.join(missing)}: no formation by hand in this run (name formation "
                   "in --scenarios too, with --sizes including these, to fill those cells)")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rxd", required=True, help="path of the rxd binary")
    p.add_argument("--rxc", required=True, help="path of the rxc binary")
    p.add_argument("--lxd", default="", help="path of the lxd binary ('' if none)")
    p.add_argument("--lxc", default="", help="path of the lxc binary ('' if none)")
    p.add_argument("--work", required=True, help="scratch directory (removed by bench/run)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per target first")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                   help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    p.add_argument("--sizes", default=None,
                   help="cluster sizes N of the formation and form scenarios (default: "
                        f"{','.join(map(str, FORMATION_SIZES))} for formation, "
                        f"{','.join(map(str, FORM_SIZES))} for form)")
    p.add_argument("--formation-runs", type=int, default=None,
                   help=f"runs per target of each formation (and form) below "
                        f"N={FORMATION_ONCE_FROM} (default: --runs; those from there on run "
                        "once)")
    p.add_argument("--formation-timeout", type=float, default=600,
                   help="bound of one formation, daemon starts included, in seconds")
    p.add_argument("--profiles", default=",".join(map(str, SCALE_SIZES)),
                   help="cluster database sizes (profiles) of the scale scenario")
    p.add_argument("--scale-timeout", type=float, default=1800,
                   help="bound of one scale run (one size, one implementation), in seconds")
    p.add_argument("--max-seconds", type=float, default=3600,
                   help="start no new run after this long; print what was measured")
    a = p.parse_args()

    names = [s for s in a.scenarios.split(",") if s]
    for s in names:
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    if a.formation_runs is None:
        a.formation_runs = a.runs
    if not 1 <= a.runs <= 100 or not 1 <= a.formation_runs <= 100:
        raise SystemExit("--runs and --formation-runs must be between 1 and 100")
    if not 10 <= a.formation_timeout <= 3600:
        raise SystemExit("--formation-timeout must be between 10 and 3600")
    sizes = parse_sizes(a.sizes) if a.sizes is not None else None
    profile_sizes = parse_profiles(a.profiles)
    if not 60 <= a.scale_timeout <= 86400:
        raise SystemExit("--scale-timeout must be between 60 and 86400")

    # SIGTERM (from bench/run's trap) unwinds like an exception, so every `finally` stops its
    # daemon by PID. (SIGINT is ignored: bench/run runs this in the background.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    bench = Bench(a.work)
    bench.formation_timeout = a.formation_timeout
    bench.scale_timeout = a.scale_timeout
    rxd, lxd = Rxd(bench, a.rxd, a.rxc), Lxd(bench, a.lxd, a.lxc)
    targets = [rxd, lxd]

    plan, warm = [], []
    for s in names:
        fn, rows = SCENARIOS[s]
        if s == "scale":
            # Each size once per implementation, no warm-up: minutes per run.
            for n in profile_sizes:
                plan.append(Entry(f"scale {n}", lambda b, t, n=n: scale(b, t, n),
                                  scale_rows(n), 1, cell=True, scenario=s))
        elif s == "formation":
            for n in sizes or FORMATION_SIZES:
                runs = 1 if n >= FORMATION_ONCE_FROM else a.formation_runs
                plan.append(Entry(f"formation N={n}", lambda b, t, n=n: formation(b, t, n),
                                  formation_rows(n), runs, size=n, scenario=s))
            warm.append(Entry(f"formation N={FORMATION_WARMUP_SIZE}",
                              lambda b, t: formation(b, t, FORMATION_WARMUP_SIZE), [], 1,
                              size=FORMATION_WARMUP_SIZE, scenario=s))
        elif s == "form":
            # rxd only; a failed size marks that size's cells (cell=True), as in scale.
            for n in sizes or FORM_SIZES:
                runs = 1 if n >= FORMATION_ONCE_FROM else a.formation_runs
                plan.append(Entry(f"form N={n}", lambda b, t, n=n: form(b, t, n),
                                  form_rows(n), runs, size=n, cell=True, scenario=s,
                                  only="rxd"))
            warm.append(Entry(f"form N={FORMATION_WARMUP_SIZE}",
                              lambda b, t: form(b, t, FORMATION_WARMUP_SIZE), [], 1,
                              size=FORMATION_WARMUP_SIZE, cell=True, scenario=s, only="rxd"))
        else:
            plan.append(Entry(s, fn, rows, a.runs))
            warm.append(Entry(s, fn, rows, a.runs))

    results = {t.name: {} for t in targets}  # target -> metric -> [values]
    counts = {}  # (target, entry key) -> measured runs
    cell_unavailable = {}  # (target, entry key) -> reason: LXD failed at that one cell
    cell_failed = {}  # (rxd, entry key) -> reason: rxd failed at a `cell` entry (scale, form)
    warmup_failed = {}  # (rxd, scenario) -> reason: the warm-up of a `cell` scenario failed
    formation_unavailable = {}  # target -> reason: no formation of it can work here
    out_of_time = {}  # (target, scenario) -> smallest N that did not form within the bound
    end = now() + a.max_seconds
    load_before = os.getloadavg()[0]
    cut_short = None
    rxd_failed = None

    def why_not(t, e):
        if t.unavailable:
            return t.unavailable
        if e.size is not None:
            if t.name in formation_unavailable:
                return formation_unavailable[t.name]
            oot = out_of_time.get((t.name, e.scenario))
            if oot is not None and e.size > oot:
                return f"not tried: N={oot} did not form within {a.formation_timeout:.0f} s"
        if (t.name, e.scenario) in warmup_failed:
            return warmup_failed[(t.name, e.scenario)]
        return cell_unavailable.get((t.name, e.key))

    def one(t, e, record):
        if why_not(t, e) or (e.cell and (t.name, e.key) in cell_failed):
            return
        try:
            out = e.fn(bench, t)
        except Failed as err:
            if e.cell and record:
                for k, v in getattr(err, "partial", {}).items():
                    results[t.name].setdefault(k, []).append(v)
            if e.cell and t is not lxd:
                reason = str(err).removeprefix(f"{t.name}: ")
                if not record:
                    warmup_failed[(t.name, e.scenario)] = f"the warm-up failed: {reason}"
                else:
                    cell_failed[(t.name, e.key)] = reason
                    if isinstance(err, OutOfTime) and e.size is not None:
                        key = (t.name, e.scenario)
                        out_of_time[key] = min(e.size, out_of_time.get(key, e.size))
                log(f"{t.name} failed ({e.key}): {err}")
                return
            if t is not lxd:
                raise
            # LXD failing here is a fact about this machine, not about rxd.
            reason = str(err).removeprefix("lxd: ")
            if e.cell:
                cell_unavailable[(t.name, e.key)] = reason
            elif e.size is None:
                t.unavailable = reason
            elif not record:
                formation_unavailable[t.name] = f"the warm-up formation failed: {reason}"
            else:
                cell_unavailable[(t.name, e.key)] = reason
                if isinstance(err, OutOfTime):
                    key = (t.name, e.scenario)
                    out_of_time[key] = min(e.size, out_of_time.get(key, e.size))
            log(f"lxd unavailable ({e.key}): {reason}")
            return
        if record:
            counts[(t.name, e.key)] = counts.get((t.name, e.key), 0) + 1
            for k, v in out.items():
                vals = v if isinstance(v, list) else [v]
                results[t.name].setdefault(k, []).extend(vals)

    try:
        for i in range(a.warmup):
            for t in targets:
                for e in warm:
                    if not e.runs_on(t):
                        continue
                    log(f"warm-up {i + 1}: {t.name} {e.key}")
                    one(t, e, record=False)
        for i in range(max(e.runs for e in plan)):
            order = targets if i % 2 == 0 else list(reversed(targets))
            for e in plan:
                if i >= e.runs:
                    continue
                for t in order:
                    if not e.runs_on(t):
                        continue
                    if now() > end:
                        raise TimeoutError
                    log(f"run {i + 1}/{e.runs}: {t.name} {e.key}")
                    one(t, e, record=True)
    except TimeoutError:
        cut_short = f"stopped after --max-seconds {a.max_seconds:.0f}: later runs not measured"
        log(cut_short)
    except Failed as err:
        rxd_failed = str(err)
        print(f"bench: {err}", file=sys.stderr)

    # ---- the table
    head = ("scenario", "rxd median [min-max]", "lxd median [min-max]", "rxd/lxd")
    formation_sizes = [e.size for e in plan if e.scenario == "formation"]
    forms = [e for e in plan if e.scenario == "form"]
    lines = []
    notes = []

    def rxd_failure(e):
        """Why rxd failed at a `cell` entry, or was not tried there; else None."""
        return cell_failed.get(("rxd", e.key)) or (why_not(rxd, e) if e.cell else None)

    for e in plan:
        for metric, unit in e.rows:
            r_med, r_txt = summarize(results["rxd"].get(metric, []), unit)
            failed = rxd_failure(e)
            if failed and r_med is None:
                r_txt = f"failed: {failed[:40]}"
                note = f"rxd {e.key} failed: {failed}"
                if len(failed) > 40 and note not in notes:
                    notes.append(note)
            elif failed and e.only:
                note = (f"rxd {e.key} failed in a run, not run again (its cells are over the "
                        f"runs before): {failed}")
                if note not in notes:
                    notes.append(note)
            why = why_not(lxd, e)
            if not e.runs_on(lxd):
                l_med, l_txt = None, "- (rxd only)"
            elif why:
                l_med, l_txt = None, f"unavailable: {why[:40]}"
                note = (f"lxd unavailable: {why}" if why == lxd.unavailable
                        else f"lxd {e.key} unavailable: {why}")
                if len(why) > 40 and note not in notes:
                    notes.append(note)
            else:
                l_med, l_txt = summarize(results["lxd"].get(metric, []), unit)
            if why and e.cell and results["lxd"].get(metric):
                # Measured before LXD failed at a later step of the same run.
                l_med, l_txt = summarize(results["lxd"][metric], unit)
            ratio = f"{r_med / l_med:.2f}" if r_med is not None and l_med else "-"
            lines.append((f"{metric} ({unit})", r_txt, l_txt, ratio))
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(4)]
    out = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                     for i, c in enumerate(row)) for row in [head] + lines]
    print()
    print("\n".join(out))
    print()
    if forms:
        print("\n".join(form_comparison(plan, forms, results, rxd_failure, why_not, lxd)))
        print()
    first = {}  # scenario -> key of its first entry: later sizes are shown as N=n
    for e in plan:
        first.setdefault(e.scenario, e.key)
    runs = ", ".join(f"{e.key if e.size is None or first[e.scenario] == e.key else f'N={e.size}'} "
                     + "/".join(str(counts.get((t.name, e.key), 0)) if e.runs_on(t) else "-"
                                for t in targets)
                     for e in plan)
    if warm:
        of = [f"of {s}: one N={FORMATION_WARMUP_SIZE} {s}" for s in ("formation", "form")
              if any(e.scenario == s for e in plan)]
        print(f"measured runs (rxd/lxd): {runs}; before them {a.warmup} warm-up "
              f"run{'' if a.warmup == 1 else 's'} of each "
              f"scenario" + (f" ({'; '.join(of)})" if of and a.warmup else "")
              + ("; none of scale" if any(e.scenario == "scale" for e in plan) else ""))
    else:
        print(f"measured runs (rxd/lxd): {runs}; no warm-up")
    if formation_sizes:
        once = [str(n) for n in formation_sizes if n >= FORMATION_ONCE_FROM]
        print("formation: from node1's `init --preseed` until node1 lists N members, all "
              "Online (tokens included);")
        print("  join/member: one joining member's `init --preseed`, median [min-max] over the "
              "N-1 joins of every run; last join: node N's")
        if once:
            print(f"  N={','.join(once)}: formed once per implementation (expensive), so their "
                  "[min-max] is over that one run")
        print(f"  members on {rxd.cluster_net}.K (rxd) and {lxd.cluster_net}.K (lxd); each "
              f"formation bounded by {a.formation_timeout:.0f} s")
    if forms:
        once = [str(e.size) for e in forms if e.size >= FORMATION_ONCE_FROM]
        print("form: from spawning `rxd form` on node1 and `rxd join` on node2..nodeN, all at "
              "once, until node1 lists N members, all Online;")
        print("  daemons started and ready before the clock starts, as in formation; "
              "discovery+trust: from a joiner's spawn until it prints")
        print(f"  `{FORM_TRUSTED}...`, median [min-max] over the N-1 joiners of every run"
              + (f"; N={','.join(once)}: formed once (expensive)" if once else ""))
        print(f"  rxd only; member K in a network namespace of its own, {FORM_NET}.K/24 on eth0 "
              f"(a veth to bridge hub0); each form bounded by {a.formation_timeout:.0f} s")
    scales = [e.key.split()[1] for e in plan if e.scenario == "scale"]
    if scales:
        print(f"scale: {','.join(scales)} profiles written by {SCALE_CLIENTS} clients over 3 "
              "members (writes/s), then node4's `init --preseed` (join after) and until node4")
        print("  lists them all (join->reads all); the leader's VmRSS just before the join, its "
              "peak growth (10 ms samples) until then, and its VmHWM growth;")
        print(f"  members on {rxd.scale_net}.K (rxd) and {lxd.scale_net}.K (lxd); each run "
              f"bounded by {a.scale_timeout:.0f} s, once per implementation and size")
    print(f"{os.cpu_count()} CPUs, 1-min load {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after; single/waitready: rxd on {rxd.address}, "
          f"lxd on {lxd.address}")
    for note in notes:
        print(note)
    if lxd.binary and not lxd.unavailable:
        v = subprocess.run([lxd.binary, "--version"], capture_output=True, text=True, timeout=10)
        print(f"lxd {v.stdout.strip()} ({lxd.binary})")
    if cut_short:
        print(cut_short)
    if rxd_failed:
        print(f"rxd failed, later runs not measured: {rxd_failed}")
        return 1
    return 1 if cell_failed or warmup_failed else 0


if __name__ == "__main__":
    sys.exit(main())
