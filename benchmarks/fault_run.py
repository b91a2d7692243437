"""Fault run (issue 8, acceptance 2): a digits training killed with SIGKILL at random points, resumed each
time, must finish with exactly the metrics of an uninterrupted run.

    python benchmarks/fault_run.py --epochs 5 --kills 10 --out runs/fault --seed 0

1. trains the reference run (``nebula train --data digits -v -m -r -1 --epochs 5 ...``) uninterrupted and
   measures its start-up time (launch -> run.json written) and its training time per epoch;
2. launches the same command into a second folder and, 10 times in a row, sends SIGKILL at a random
   point, each time relaunching with ``nebula train --resume RUN`` (or the original command if the
   folder has no config.yaml yet). With probability 0.2 the kill lands in the start-up (imports, data
   loading, model building: uniform in [0, start-up]); otherwise at a random training step, uniform in
   [1, 1.5 epochs] steps after the step the process started from (read from its progress bar), plus a
   uniform fraction of a step, i.e. mid-epoch, at epoch ends or around checkpoint writes;
3. lets the last resume finish and compares: every metrics.csv row, the full-precision per-epoch history
   of the final checkpoints, embeddings.npz, and the evaluation summary (``nebula.evaluate``).

Every process runs with OMP_NUM_THREADS=1 so the float reductions are the same in all of them.
Prints a table of the kills and the comparison, and writes ``OUT/fault_run.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def base_command(out: Path, epochs: int, seed: int) -> list[str]:
    return [sys.executable, "-m", "nebula", "train", "--data", "digits", "-v", "-m", "-r", "-1", "--epochs", str(epochs),
            "--seed", str(seed), "--set", "train.pretrain_epochs=2", "--set", "train.figures=false",
            "--set", "train.checkpoint_seconds=0", "--device", "cpu",  # a checkpoint per epoch: what is tested
            "-o", str(out)]  # not --quiet: the kill loop reads the step counter of the progress bar


def resume_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "nebula", "train", "--resume", str(out)]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def checkpoints(run: Path) -> list[str]:
    root = run / "checkpoints"
    return sorted(p.name for p in root.iterdir() if p.name.startswith("ckpt-")) if root.is_dir() else []


def metrics_rows(run: Path) -> list[dict[str, str]]:
    path = run / "metrics.csv"
    return list(csv.DictReader(open(path))) if path.exists() else []


def final_history(run: Path) -> list[dict[str, float]]:
    import torch

    last = sorted((run / "checkpoints").glob("ckpt-*"))[-1]
    return torch.load(last / "state.pt", weights_only=True)["history"]


class Progress:
    """Follows a process's tqdm bar on stderr: ``step`` is the newest ``n`` of ``n/total``."""

    PATTERN = re.compile(rb"train:[^\r\n]*?(\d+)/(\d+) \[")

    def __init__(self, proc: subprocess.Popen) -> None:
        self.step: int | None = None
        self.total: int | None = None
        self.tail = b""
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        buf = b""
        while chunk := stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096):
            buf = (buf + chunk)[-8192:]
            matches = self.PATTERN.findall(buf)
            if matches:
                self.step, self.total = int(matches[-1][0]), int(matches[-1][1])
            self.tail = buf


def run_reference(out: Path, epochs: int, seed: int) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(base_command(out, epochs, seed), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    progress = Progress(proc)
    startup = first = None
    while proc.poll() is None:
        if startup is None and (out / "run.json").exists():
            startup = time.perf_counter() - t0
        if first is None and checkpoints(out):
            first = time.perf_counter() - t0
        time.sleep(0.002)
    total = time.perf_counter() - t0
    progress.thread.join(5)
    if proc.returncode != 0:
        raise SystemExit(f"reference run failed: {progress.tail[-2000:].decode(errors='replace')}")
    info = json.loads((out / "run.json").read_text())
    startup = startup or 0.0
    return {"startup_s": startup, "total_s": total, "train_s": info["train_seconds"], "epoch_s": info["train_seconds"] / epochs,
            "first_checkpoint_s": (first or total) - startup, "total_steps": progress.total or 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--out", default="runs/fault")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ref_dir, run_dir = out / "reference", out / "faulted"
    rng = np.random.default_rng(args.seed)

    t_all = time.perf_counter()
    ref = run_reference(ref_dir, args.epochs, args.train_seed)
    print(f"reference: {ref['total_s']:.1f} s total, start-up {ref['startup_s']:.1f} s, first checkpoint "
          f"{ref['first_checkpoint_s']:.1f} s after run.json, {ref['epoch_s']:.2f} s per epoch (shared, loaded machine)")

    kills = []
    while len(kills) < args.kills:
        cmd = resume_command(run_dir) if (run_dir / "config.yaml").exists() else base_command(run_dir, args.epochs, args.train_seed)
        before = checkpoints(run_dir)
        in_startup = bool(rng.random() < 0.2)
        steps_per_epoch = max(1, ref["total_steps"] // args.epochs)
        ahead = int(rng.integers(1, int(1.5 * steps_per_epoch) + 1))
        jitter = float(rng.random())
        delay = float(rng.uniform(0, ref["startup_s"]))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        progress = Progress(proc)
        if in_startup:
            while proc.poll() is None and time.perf_counter() - t0 < delay:
                time.sleep(0.002)
            where = f"start-up, {delay:.2f} s after launch"
        else:
            while proc.poll() is None and progress.step is None:
                time.sleep(0.002)
            start = progress.step or 0
            target = start + ahead
            while proc.poll() is None and (progress.step or 0) < target:
                time.sleep(0.002)
            time.sleep(jitter * ref["train_s"] / max(ref["total_steps"], 1))
            where = f"step {progress.step} (+{jitter:.2f} step; started at step {start})"
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        status = json.loads((run_dir / "run.json").read_text()).get("status") if (run_dir / "run.json").exists() else "-"
        kills.append({"attempt": len(kills) + 1, "mode": "resume" if "--resume" in cmd else "fresh",
                      "where": where,
                      "killed": not finished, "returncode": proc.returncode, "checkpoints_before": before[-1:] or ["-"],
                      "checkpoints_after": checkpoints(run_dir)[-1:] or ["-"], "epochs_in_metrics": len(metrics_rows(run_dir)),
                      "status": status})
        k = kills[-1]
        print(f"kill {k['attempt']:2d}: {k['mode']:6s} SIGKILL at {where} -> rc {proc.returncode}, "
              f"last checkpoint {k['checkpoints_before'][0]} -> {k['checkpoints_after'][0]}, "
              f"metrics rows {k['epochs_in_metrics']}, run.json {status}")
        if finished:
            print("  the run finished before this kill; no more kills possible")
            break
    t0 = time.perf_counter()
    res = subprocess.run(resume_command(run_dir) if (run_dir / "config.yaml").exists() else base_command(run_dir, args.epochs, args.train_seed),
                         env=env(), capture_output=True, text=True)
    notices = [ln for ln in res.stdout.splitlines() if "resumed from" in ln or "unreadable" in ln or "no readable" in ln]
    if res.returncode != 0:
        raise SystemExit(f"final resume failed: {res.stderr[-2000:]}")
    print(f"final resume: {time.perf_counter() - t0:.1f} s; {'; '.join(notices)}")

    # ---------------------------------------------------------------- comparison
    from nebula.evaluate import evaluate

    rows_ref, rows_run = metrics_rows(ref_dir), metrics_rows(run_dir)
    columns = [c for c in rows_ref[0] if c != "seconds"]
    rows_equal = len(rows_ref) == len(rows_run) and all(a[c] == b[c] for a, b in zip(rows_ref, rows_run) for c in columns)
    h_ref, h_run = final_history(ref_dir), final_history(run_dir)
    history_diff = max(abs(a[k] - b[k]) for a, b in zip(h_ref, h_run) for k in a if k != "seconds")
    with np.load(ref_dir / "embeddings.npz") as fa, np.load(run_dir / "embeddings.npz") as fb:
        z_diff = float(np.abs(fa["z"] - fb["z"]).max())
        assign_equal = bool(np.array_equal(fa["assign"], fb["assign"]))
    ev_ref = evaluate(ref_dir, plugins=False)["summary"]
    ev_run = evaluate(run_dir, plugins=False)["summary"]
    keys = [k for k in ev_ref if isinstance(ev_ref[k], (int, float)) and "seconds" not in k]
    eval_diff = max(abs(ev_ref[k] - ev_run[k]) for k in keys if ev_ref[k] == ev_ref[k])  # NaN-safe
    print("\nper-epoch losses (reference | faulted):")
    for a, b in zip(rows_ref, rows_run):
        print(f"  epoch {a['epoch']}: loss {a['loss']} | {b['loss']}   rec {a['rec']} | {b['rec']}   "
              f"near {a.get('near') or '-'} | {b.get('near') or '-'}   metric {a.get('metric') or '-'} | {b.get('metric') or '-'}")
    print("final evaluation (reference | faulted): " + ", ".join(f"{k} {ev_ref[k]:.4f} | {ev_run[k]:.4f}" for k in keys[:8]))
    print(f"metrics.csv rows identical: {rows_equal}; max |history diff| {history_diff:.3g}; max |z diff| {z_diff:.3g}; "
          f"assignments identical: {assign_equal}; max |eval diff| {eval_diff:.3g}")
    summary = {"reference": ref, "kills": kills, "kills_done": sum(k["killed"] for k in kills), "rows_identical": rows_equal,
               "max_history_diff": history_diff, "max_z_diff": z_diff, "assign_identical": assign_equal,
               "max_eval_diff": eval_diff, "eval_reference": ev_ref, "eval_faulted": ev_run,
               "total_seconds": time.perf_counter() - t_all, "load_average": os.getloadavg()}
    (out / "fault_run.json").write_text(json.dumps(summary, indent=2, default=str))
    ok = rows_equal and history_diff <= 1e-6 and z_diff <= 1e-6 and assign_equal
    print(f"{summary['kills_done']} kills; identical final metrics: {ok}  ({summary['total_seconds']:.0f} s, "
          f"load average {summary['load_average'][0]:.1f})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
