"""The `watch` case of bench/run: `--watch` of the baseline (main: a pass
every `--interval 1m`) against this tree's (event-driven, `--interval 1h`),
on the benchmark's own control plane. Figures, not assertions:

- a pod becomes eligible (`--older-than 3s --age-from finished`): seconds
  from that moment (its finish time plus 3 s) to the plugin's delete in the
  audit log, at random moments;
- `count/pods` crosses `--high-watermark 0.8` (17 of 20): seconds until the
  quota's status is back at the low watermark (10 of 20);
- N idle finished pods that are not eligible, M minutes: the plugin's LIST
  requests in the audit log, and the control plane's CPU seconds over those
  minutes less the same minutes with no watcher (what the cleaner costs it);
- 100 namespaces x 500 pods, `-A`: the watcher's peak RSS (VmHWM) once its
  first pass is done, idle (nothing eligible) and in a dry run that plans
  every pod;
- the API server killed and started again mid-watch: the pods that became
  eligible during the outage and those created right after it, how long
  until they are gone, and whether the watcher still runs.
"""

import json
import os
import queue
import random
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

PLUGIN_AGENT = '"userAgent":"kubectl-crucible-clean'
MAIN_INTERVAL = "1m"
CHANGE_INTERVAL = "1h"


class Watcher:
    """A plugin process in the background, its stdout read line by line."""

    def __init__(self, b, binary, args):
        self.p = subprocess.Popen([str(binary), *args], env=b.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line)

    def line(self, limit):
        """The next stdout line, or None after `limit` seconds."""
        try:
            return self.lines.get(timeout=limit)
        except queue.Empty:
            return None

    def quiet(self, seconds, limit):
        """Waits until stdout has been quiet for `seconds` (at most `limit`)."""
        end = time.monotonic() + limit
        while time.monotonic() < end and self.line(seconds) is not None:
            pass

    def status(self, field):
        for line in Path(f"/proc/{self.p.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def peak_mib(self):
        return self.status("VmHWM") / 1024.0

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def when(rfc3339):
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def plugin_delete_at(b, offset, name, limit):
    """The time the plugin's delete of pod `name` reached the API server."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with open(b.dir / "audit.log", "rb") as f:
            f.seek(offset)
            for raw in f:
                line = raw.decode("utf-8", "replace")
                if ('"stage":"ResponseComplete"' in line and '"verb":"delete"' in line
                        and PLUGIN_AGENT in line and f'"name":"{name}"' in line):
                    return when(json.loads(line)["requestReceivedTimestamp"])
        time.sleep(0.2)
    return None


def finished_at(b, ns, name):
    out = b.kubectl("get", "pod", "-n", ns, name, "-o",
                    "jsonpath={.status.containerStatuses[0].state.terminated.finishedAt}").stdout
    return when(out.strip())


def quota_used(b, ns):
    out = b.kubectl("get", "resourcequota", "pods", "-n", ns, "-o",
                    "jsonpath={.status.used.count/pods}", check=False).stdout.strip()
    return int(out) if out.isdigit() else None


def until(what, check, limit, every=0.2):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    raise RuntimeError(f"timed out after {limit}s waiting for {what}")


def args(interval, *more):
    return [*more, "--yes", "--watch", "--interval", interval]


def eligibility(b, binary, interval, samples, spread):
    ns = b.namespace("eligible")
    w = Watcher(b, binary, args(interval, "-n", ns, "-o", "json", "--test-id", "bench",
                                "--older-than", "3s", "--age-from", "finished"))
    try:
        if w.line(120) is None:
            raise RuntimeError("no first pass")
        delays = []
        for i in range(samples):
            # A random moment: a pass every minute lands anywhere in it.
            time.sleep(random.uniform(0, spread))
            offset = b.audit_len()
            b.fill(ns, 1, prefix=f"eligible{i}")
            name = f"eligible{i}-000000"
            eligible = finished_at(b, ns, name) + 3
            deleted = plugin_delete_at(b, offset, name, 180)
            delays.append(None if deleted is None else deleted - eligible)
        return delays
    finally:
        w.stop()


def watermark(b, binary, interval, samples, spread):
    ns = b.namespace("watermark")
    b.kubectl("create", "quota", "pods", "-n", ns, "--hard=count/pods=20")
    b.fill(ns, 15, prefix="base")
    until("count/pods 15", lambda: quota_used(b, ns) == 15, 120)
    w = Watcher(b, binary, args(interval, "-n", ns, "-o", "json", "--strategy", "watermark",
                                "--high-watermark", "0.8", "--low-watermark", "0.5"))
    try:
        if w.line(120) is None:
            raise RuntimeError("no first pass")
        times = []
        for i in range(samples):
            time.sleep(random.uniform(0, spread))
            used = quota_used(b, ns) or 0
            # To 17 of 20 (85%), over the high watermark.
            b.fill(ns, 17 - used, prefix=f"cross{i}")
            crossed = time.monotonic()
            until("count/pods back to 10", lambda: (quota_used(b, ns) or 99) <= 10, 180, every=0.1)
            times.append(time.monotonic() - crossed)
        return times
    finally:
        w.stop()


def idle(b, binary, interval, ns, minutes):
    """(LIST requests, control-plane CPU s, the plugin's CPU s) over `minutes`."""
    offset, cpu = b.audit_len(), b.server_cpu()
    w = Watcher(b, binary, args(interval, "-n", ns, "-o", "json", "--test-id", "bench",
                                "--older-than", "1h", "--age-from", "finished"))
    try:
        time.sleep(minutes * 60)
        cpu = b.server_cpu() - cpu
        own = w.cpu_seconds()
    finally:
        w.stop()
    lists = b.audit_since(offset, PLUGIN_AGENT, '"verb":"list"')
    return lists, cpu, own


def peak(b, binary, interval, extra, limit):
    """The watcher's peak RSS (MiB) once its first pass is done, and how long that took."""
    t = time.monotonic()
    w = Watcher(b, binary, args(interval, "-A", *extra))
    try:
        if w.line(limit) is None:
            raise RuntimeError("no first pass")
        w.quiet(3, limit)
        return w.peak_mib(), time.monotonic() - t
    finally:
        w.stop()


def kill_apiserver(b):
    pidfile = b.dir / "pids" / "kube-apiserver.pid"
    pid = int(pidfile.read_text().strip())
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    os.kill(pid, signal.SIGKILL)
    until("the API server gone", lambda: not Path(f"/proc/{pid}").exists()
          or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30)
    return argv


def start_apiserver(b, argv):
    log = open(b.dir / "logs" / "kube-apiserver.log", "ab")
    p = subprocess.Popen(["setsid", *argv], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    (b.dir / "pids" / "kube-apiserver.pid").write_text(f"{p.pid}\n")
    until("the API server back",
          lambda: b.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() == "ok", 120, every=0.5)


def restart(b, binary, interval):
    """(pods left, [seconds after the restart until the pods eligible during
    the outage are gone, until those created after it (10 s age) are],
    still running, exit code)."""
    ns = b.namespace("restart")
    w = Watcher(b, binary, args(interval, "-n", ns, "-o", "json", "--test-id", "bench",
                                "--older-than", "10s", "--age-from", "finished", "--request-timeout", "5s"))
    try:
        if w.line(120) is None:
            raise RuntimeError("no first pass")
        b.fill(ns, 5, prefix="during")
        argv = kill_apiserver(b)
        time.sleep(15)  # the five become eligible while it is down
        start_apiserver(b, argv)
        back = time.monotonic()
        b.fill(ns, 5, prefix="after")
        gone = lambda prefix: not any(p.startswith(prefix) for p in names(b, ns))
        took = []
        for prefix in ("during", "after"):
            try:
                until(f"the {prefix} pods gone", lambda: gone(prefix), 300, every=0.5)
                took.append(time.monotonic() - back)
            except RuntimeError:
                took.append(None)
        left, alive = b.left(ns), w.alive()
    finally:
        code = w.stop()
    return left, took, alive, code


def names(b, ns):
    out = b.kubectl("get", "pods", "-n", ns, "-o", "name", check=False).stdout
    return [n.split("/", 1)[-1] for n in out.split()]


def fmt_list(values):
    return ", ".join("-" if v is None else f"{v:.1f}" for v in values)


def run(b):
    quick = b.quick
    samples = 2 if quick else 3
    spread = 20 if quick else 60  # seconds: the random moments fall within a minute's pass
    base, current = b.base, b.current

    e_main = eligibility(b, base, MAIN_INTERVAL, samples, spread)
    e_change = eligibility(b, current, CHANGE_INTERVAL, samples, spread)
    worst = lambda v: max((x for x in v if x is not None), default=None)
    b.row("watch", "a pod becomes eligible (--older-than 3s --age-from finished): worst seconds until deleted",
          "s", None, "", worst(e_main), worst(e_change),
          f"samples at random moments: main (--interval {MAIN_INTERVAL}) {fmt_list(e_main)}; "
          f"change (--interval {CHANGE_INTERVAL}) {fmt_list(e_change)}")

    w_main = watermark(b, base, MAIN_INTERVAL, samples, spread)
    w_change = watermark(b, current, CHANGE_INTERVAL, samples, spread)
    b.row("watch", "count/pods crosses --high-watermark 0.8 (17/20): worst seconds until back at 10/20",
          "s", None, "", worst(w_main), worst(w_change),
          f"samples: main {fmt_list(w_main)}; change {fmt_list(w_change)}")

    n, minutes = (2000, 2) if quick else (10000, 10)
    ns = b.namespace("idle", n)
    cpu = b.server_cpu()
    time.sleep(minutes * 60)
    floor = b.server_cpu() - cpu
    m_lists, m_cpu, m_own = idle(b, base, MAIN_INTERVAL, ns, minutes)
    c_lists, c_cpu, c_own = idle(b, current, CHANGE_INTERVAL, ns, minutes)
    b.row("watch", f"{n} idle finished pods, not eligible, {minutes} minutes: LIST requests (pages of 500)",
          "requests", None, "", m_lists, c_lists)
    m_att, c_att = m_cpu - floor, c_cpu - floor
    b.row("watch", f"the same {minutes} minutes: control-plane CPU seconds attributable to the cleaner",
          "s", None, "", m_att, c_att,
          f"control plane over {minutes} min: {floor:.1f} s with no watcher, main {m_cpu:.1f} s, change {c_cpu:.1f} s "
          f"(change/main attributable: {100 * c_att / m_att:.0f}%); the plugin's own CPU: main {m_own:.1f} s, "
          f"change {c_own:.1f} s" if m_att > 0 else "")

    namespaces, per = b.size("scale_namespaces"), b.size("scale_pods")
    while b.ns_scale < namespaces:
        b.ns_scale += 1
        scale_ns = f"scale-{b.ns_scale:03}"
        b.kubectl("create", "namespace", scale_ns)
        b.fill(scale_ns, per)
    pods = namespaces * per
    idle_args = ["-o", "json", "--test-id", "bench", "--older-than", "1h", "--age-from", "finished"]
    m_idle, m_t = peak(b, base, MAIN_INTERVAL, idle_args, 600)
    c_idle, c_t = peak(b, current, CHANGE_INTERVAL, idle_args, 600)
    b.row("watch", f"{pods} pods -A ({namespaces} namespaces): peak RSS of the watcher, nothing eligible",
          "MiB", None, "", m_idle, c_idle, f"first pass done after: main {m_t:.1f} s, change {c_t:.1f} s")
    dry = ["-o", "name", "--all", "--dry-run"]
    m_dry, _ = peak(b, base, MAIN_INTERVAL, dry, 600)
    c_dry, _ = peak(b, current, CHANGE_INTERVAL, dry, 600)
    b.row("watch", f"the same, a dry run whose first pass plans all {pods} (-o name)", "MiB", None, "",
          m_dry, c_dry)

    r_main = restart(b, base, MAIN_INTERVAL)
    r_change = restart(b, current, CHANGE_INTERVAL)
    say = lambda r: (f"{r[0]} of 10 left; after the restart, the pods eligible during the outage gone in "
                     f"{fmt_list(r[1][:1])} s, those created after it (eligible 10 s later) in "
                     f"{fmt_list(r[1][1:])} s; {'still running' if r[2] else 'exited'} (exit {r[3]} on SIGTERM)")
    b.row("watch", "API server killed mid-watch, started again 15 s later: eligible pods left", "pods",
          None, "", r_main[0], r_change[0], f"main: {say(r_main)}; change: {say(r_change)}")
