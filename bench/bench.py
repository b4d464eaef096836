#!/usr/bin/env python3
"""Side-by-side benchmark of rxd and Debian's LXD. Started by bench/run; see bench/README.md.

Layout:
  Target    -- how to start, probe, bootstrap and stop one implementation (rxd or lxd).
  Daemon    -- one running daemon: its PID, data directory and unix socket.
  SCENARIOS -- the measured scenarios; each is a function (bench, target) -> {metric: value}.
               Add a scenario by writing such a function and listing it there with its metrics.

Every daemon is started in its own session, its PID is appended to WORK/pids (bench/run's EXIT
trap kills any survivor by that PID), and it is stopped by PID in a `finally`. Every wait is
bounded in time and in attempts.
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

    # --- shared
    def run_cli(self, dir_, args, timeout, stdin=None):
        argv = self.cli(dir_, *args)
        try:
            r = subprocess.run(argv, input=stdin, env=self.env(dir_), capture_output=True,
                               timeout=timeout, text=True)
        except OSError as e:
            raise Failed(f"{self.name}: cannot run `{' '.join(args)}`: {e}")
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name}: `{' '.join(args)}` still running after {timeout}s")
        if r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
            raise Failed(f"{self.name}: `{' '.join(args)}` exited {r.returncode}: "
                         f"{msg[-1] if msg else ''}")
        return r

    def start(self, dir_):
        os.makedirs(dir_, exist_ok=True)
        stderr_path = os.path.join(dir_, "daemon.stderr")
        with open(stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(self.daemon_argv(dir_), env=self.env(dir_), cwd=dir_,
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

    def stop(self, d):
        """Stop a daemon by its PID: the tool's own shutdown, then SIGTERM, then SIGKILL."""
        if d.alive():
            try:
                self.run_cli(d.dir, ["shutdown", "--timeout", "30"], timeout=40)
            except Failed as e:
                log(f"{e} (stopping by signal)")
        for sig, grace in ((None, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
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

    def __init__(self, bench, binary):
        super().__init__(bench)
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"rxd binary {binary} missing; bench/run builds it")

    def daemon_argv(self, dir_):
        return [self.binary, "--dir", dir_]

    def cli(self, dir_, *args):
        return [self.binary, "--dir", dir_, *args]


class Lxd(Target):
    name = "lxd"
    address = "127.0.4.2"

    def __init__(self, bench, binary):
        super().__init__(bench)
        self.binary = os.path.abspath(binary) if binary else ""
        if not binary:
            self.unavailable = "no lxd binary (apt-get install -y lxd lxd-client)"

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


# name -> (function, [(metric, unit)]). Rows are printed in this order.
# To add a scenario (join per member, formation of N members): write a function like those
# above that returns {metric: value} and list it here.
SCENARIOS = {
    "single": (single_node, [("start->ready", "ms"), ("bootstrap", "ms"),
                             ("daemon VmHWM", "MiB")]),
    "waitready": (own_waitready, [("start->waitready", "ms")]),
}


# -------------------------------------------------------------------------------------------
# the run


class Bench:
    def __init__(self, work):
        self.work = work
        self.pidfile = os.path.join(work, "pids")
        self.counter = 0
        self.ports = {}

    def record_pid(self, pid):
        with open(self.pidfile, "a") as f:
            f.write(f"{pid}\n")

    def forget_pid(self, pid):
        try:
            with open(self.pidfile) as f:
                pids = [l.strip() for l in f if l.strip() and l.strip() != str(pid)]
            with open(self.pidfile, "w") as f:
                f.write("".join(p + "\n" for p in pids))
        except OSError:
            pass

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

    def cleanup_dir(self, path):
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rxd", required=True, help="path of the rxd binary")
    p.add_argument("--lxd", default="", help="path of the lxd binary ('' if none)")
    p.add_argument("--work", required=True, help="scratch directory (removed by bench/run)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per target first")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    p.add_argument("--max-seconds", type=float, default=1200,
                   help="give up (and print what was measured) after this long")
    a = p.parse_args()

    names = [s for s in a.scenarios.split(",") if s]
    for s in names:
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    if not 1 <= a.runs <= 100:
        raise SystemExit("--runs must be between 1 and 100")

    # SIGTERM (from bench/run's trap) unwinds like an exception, so every `finally` stops its
    # daemon by PID. (SIGINT is ignored: bench/run runs this in the background.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    bench = Bench(a.work)
    rxd, lxd = Rxd(bench, a.rxd), Lxd(bench, a.lxd)
    targets = [rxd, lxd]
    results = {t.name: {} for t in targets}  # target -> metric -> [values]
    end = now() + a.max_seconds
    load_before = os.getloadavg()[0]
    cut_short = None

    def one(t, scenario, record):
        fn, _ = SCENARIOS[scenario]
        if t.unavailable:
            return
        try:
            out = fn(bench, t)
        except Failed as e:
            if t is lxd:
                # LXD failing here is a fact about this machine, not about rxd.
                t.unavailable = str(e).removeprefix("lxd: ")[:150]
                log(f"lxd unavailable: {t.unavailable}")
                return
            raise
        if record:
            for k, v in out.items():
                results[t.name].setdefault(k, []).append(v)

    try:
        for i in range(a.warmup):
            for t in targets:
                for s in names:
                    log(f"warm-up {i + 1}: {t.name} {s}")
                    one(t, s, record=False)
        for i in range(a.runs):
            order = targets if i % 2 == 0 else list(reversed(targets))
            for s in names:
                for t in order:
                    if now() > end:
                        raise TimeoutError
                    log(f"run {i + 1}/{a.runs}: {t.name} {s}")
                    one(t, s, record=True)
    except TimeoutError:
        cut_short = f"stopped after --max-seconds {a.max_seconds:.0f}"
        log(cut_short)
    except Failed as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1

    # ---- the table
    rows = [(m, u) for s in names for (m, u) in SCENARIOS[s][1]]
    head = ("scenario", "rxd median [min-max]", "lxd median [min-max]", "rxd/lxd")
    lines = []
    for metric, unit in rows:
        r_med, r_txt = summarize(results["rxd"].get(metric, []), unit)
        if lxd.unavailable:
            l_med, l_txt = None, f"unavailable: {lxd.unavailable[:70]}"
        else:
            l_med, l_txt = summarize(results["lxd"].get(metric, []), unit)
        ratio = f"{r_med / l_med:.2f}" if r_med is not None and l_med else "-"
        lines.append((f"{metric} ({unit})", r_txt, l_txt, ratio))
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(4)]
    out = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                     for i, c in enumerate(row)) for row in [head] + lines]
    print()
    print("\n".join(out))
    n = {t.name: len(results[t.name].get(rows[0][0], [])) for t in targets} if rows else {}
    print()
    print(f"runs: rxd {n.get('rxd', 0)}, lxd {n.get('lxd', 0)} (after {a.warmup} warm-up); "
          f"{os.cpu_count()} CPUs, 1-min load {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after; rxd on {rxd.address}, lxd on {lxd.address}")
    if lxd.unavailable and len(lxd.unavailable) > 70:
        print(f"lxd unavailable: {lxd.unavailable}")
    elif not lxd.unavailable:
        v = subprocess.run([lxd.binary, "--version"], capture_output=True, text=True, timeout=10)
        print(f"lxd {v.stdout.strip()} ({lxd.binary})")
    if cut_short:
        print(cut_short)
    return 0


if __name__ == "__main__":
    sys.exit(main())
