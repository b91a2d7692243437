"""Shared measuring tools of the benchmark suite: timing, memory, machine facts, tables and JSON results.

Timing: ``measure(fn)`` runs ``fn`` ``warmup`` times unmeasured, then ``repeats`` times with
``time.perf_counter`` and reports min / median / max seconds (the median is the figure quoted).

Memory (torch on CPU has no allocator statistics), two methods:

* ``tensor_peak_bytes(fn)``: peak of live tensor bytes allocated by ``fn`` above what was live when it
  started, from the allocation/free events that ``torch.profiler`` records with ``profile_memory=True``
  (a running sum over the events in time order, maximum taken). It counts every tensor autograd creates
  or saves, and nothing else (no Python objects, no allocator slack). This is the figure quoted.
* ``rss_probe(...)``: the case run once in a fresh Python process, peak RSS (VmHWM, reset to the current
  RSS once the inputs are built) after the run minus RSS before it: what the operating system saw,
  allocator included.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
MB = 1e6


# ---------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_available_bytes() -> int:
    """MemAvailable from /proc/meminfo (bytes); 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Facts that qualify every figure: CPU, cores, threads, torch, load average and free memory now."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15": list(os.getloadavg()),
        "mem_total_gb": round(mem_total / GB, 2),
        "mem_available_gb": round(mem_available_bytes() / GB, 2),
        "git_commit": _git_commit(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# ---------------------------------------------------------------------------- timing
def summarise(values: Sequence[float]) -> dict[str, Any]:
    """min / median / max / all values of a list of measurements."""
    vals = [float(v) for v in values]
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals), "values": vals}


def measure(fn: Callable[[], Any], warmup: int = 1, repeats: int = 5, budget_s: float | None = None) -> dict[str, Any]:
    """Seconds per call of ``fn`` after ``warmup`` unmeasured calls: min / median / max over ``repeats``.

    With ``budget_s`` the number of repeats is cut (never below 3) so the measured calls take about
    that long, judged from the first measured call.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    target = repeats
    while len(times) < target:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if budget_s is not None and len(times) == 1:
            target = max(3, min(repeats, int(budget_s / max(times[0], 1e-9))))
    return summarise(times)


# ---------------------------------------------------------------------------- memory
def tensor_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak live tensor bytes allocated by one call of ``fn`` above the level at its start (CPU tensors).

    From ``torch.profiler`` memory events (positive = allocation, negative = free), summed in time order.
    """
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda t: t[0])
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return int(peak)


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def max_rss_bytes() -> int:
    """Peak resident set size of this process image (VmHWM; ``ru_maxrss`` where /proc is missing, which
    on Linux also counts the parent's RSS at fork time)."""
    hwm = _status_kb("VmHWM")
    return (hwm if hwm is not None else int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)) * 1024


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux ``/proc/self/clear_refs`` 5); a no-op elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_probe(module: str, args: Sequence[str], timeout: float = 900.0) -> dict[str, Any]:
    """Run ``python -m module --probe args...`` in a fresh process; it prints one JSON line with
    ``rss_delta_bytes`` (see :func:`probe_main`). Returns that dict (or ``{"error": ...}``)."""
    cmd = [sys.executable, "-m", module, "--probe", *map(str, args)]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:300]}


def probe_main(build: Callable[[], Callable[[], Any]]) -> None:
    """Body of a ``--probe`` process: ``build()`` makes the inputs and returns the call to run once;
    prints ``{"rss_delta_bytes": peak RSS after - peak RSS before}`` as one JSON line."""
    fn = build()
    gc.collect()
    reset_peak_rss()
    before = max_rss_bytes()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    print(json.dumps({"rss_delta_bytes": max_rss_bytes() - before, "rss_before_bytes": before, "seconds": seconds}))


# ---------------------------------------------------------------------------- output
def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    if b >= GB:
        return f"{b / GB:.2f} GB"
    if b >= MB:
        return f"{b / MB:.1f} MB"
    return f"{b / 1e3:.0f} kB"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells)])


def write_result(name: str, payload: dict[str, Any], started: dict[str, Any]) -> Path:
    """benchmarks/results/<name>.json: machine facts at start and end, then the payload."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    end = machine_info()
    data = {"benchmark": name, "machine": started,
            "load_average_end": end["load_average_1_5_15"], "finished": end["time"], **payload}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def header(name: str, info: dict[str, Any]) -> str:
    la = ", ".join(f"{v:.2f}" for v in info["load_average_1_5_15"])
    return (f"== {name}: {info['cpu']}, {info['usable_cores']} cores, torch {info['torch']} "
            f"({info['torch_threads']} threads), load average {la}, {info['mem_available_gb']} GB available")
