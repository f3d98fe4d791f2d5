"""Entry point of annfast's benchmark suite: runs every section, prints the tables and the targets summary, saves files.

``python bench/run.py`` (full, several minutes) or ``python bench/run.py --quick`` (under a minute, the CI smoke
test). The sections: agreement checks, per-sample SGD throughput, mini-batch throughput, single-row latency,
multi-threaded training (speed-ups and accuracy at 2 threads), the machine's limits and performance cliffs (every way
of calling annfast against the plain path, bench/cliffs.py); see bench/README.md for what each number means and how
it is measured.
"""
from __future__ import annotations

import os

# One thread everywhere: set before NumPy, PyTorch or scikit-learn are imported (their thread pools read these).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import timing  # noqa: E402

PINNED_CORE = timing.pin_to_one_core()   # before the heavy imports, so every thread they start inherits it

import checks  # noqa: E402
import cliffs  # noqa: E402
import limits  # noqa: E402
import machine  # noqa: E402
import parallel  # noqa: E402
import report  # noqa: E402
import targets  # noqa: E402
from cbuild import compiler_version  # noqa: E402
from data import LEARNING_RATE, SHAPES, initial_weights, make_data, shape_label  # noqa: E402
from fann import Fann, FannUnavailable, build_driver, fann_version  # noqa: E402
from peers import Annfast, NumpyMLP, SklearnMLP, TorchMLP, Unavailable  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("checks", "per-sample", "minibatch", "latency", "threads", "limits", "cliffs")
#: where the FANN/PROBEN1 data files are looked for (--fann-dir), relative to the repository root
FANN_DIR = Path("..") / "shared" / "datasets" / "fann"
LATENCY_SHAPES = ("tiny", "medium")
MINIBATCH_SHAPE = "medium"

#: rows per epoch etc. per mode; "fast" rows are for annfast and FANN (more rows for the small shapes, so that an epoch
#: lasts milliseconds, not microseconds), "slow" rows for the Python-loop peers
MODES = {
    "full": {"reps": 7, "fast_rows": {"tiny": 65536, "small": 32768, "medium": 4096, "large": 4096},
             "slow_rows": {"tiny": 4096, "small": 4096, "medium": 2048, "large": 1024},
             "warmup_rows": 1024, "minibatch_rows": 4096, "check_rows": 256,
             "latency_reps": 21, "latency_batch_s": 0.02,
             "thread_rows": {"medium": 8192, "large": 4096}, "accuracy_seeds": 10},
    "quick": {"reps": 3, "fast_rows": {"tiny": 16384, "small": 8192, "medium": 2048, "large": 512},
              "slow_rows": {"tiny": 256, "small": 256, "medium": 128, "large": 32},
              "warmup_rows": 64, "minibatch_rows": 2048, "check_rows": 64,
              "latency_reps": 5, "latency_batch_s": 0.005,
              "thread_rows": {"medium": 2048, "large": 512}, "accuracy_seeds": 3},
}


def say(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def shown_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (with ``..`` where needed), so that no absolute path lands in the results."""
    try:
        return Path(os.path.relpath(path.resolve(), base)).as_posix()
    except ValueError:   # another drive (Windows)
        return path.name


class Run:
    """One benchmark run: its settings, the peers that are available, and the results gathered so far."""

    def __init__(self, args: argparse.Namespace):
        self.cfg = dict(MODES["quick" if args.quick else "full"])
        if args.reps:
            self.cfg["reps"] = args.reps
        self.shapes = {name: SHAPES[name] for name in args.only}
        self.skipped: dict[str, str] = {}
        self.fann_dir = args.fann_dir
        settings = {"mode": "quick" if args.quick else "full", "quick": args.quick, "learning_rate": LEARNING_RATE,
                    "shapes": {name: list(sizes) for name, sizes in self.shapes.items()}, **self.cfg,
                    "fann_dir": shown_path(args.fann_dir, REPO)}
        self.results: dict = {"settings": settings, "skipped": self.skipped}
        self.fann_ok = self._check_fann()
        self.limit_samples: list[dict] = []

    def skip(self, peer: str, reason: str) -> None:
        """Record (and print once) that a peer is skipped."""
        if peer not in self.skipped:
            self.skipped[peer] = reason
            say(f"  {peer}: skipped ({reason})")

    def _check_fann(self) -> bool:
        try:
            build_driver("float32")
            build_driver("float64")
            return True
        except FannUnavailable as exc:
            self.skip("FANN", str(exc))
            return False

    def _optional(self, peer: str, factory, *args, **kwargs):
        """Build a peer with ``factory(*args, **kwargs)``, or record why it cannot run here and return None."""
        if peer == "FANN" and not self.fann_ok:
            return None
        try:
            return factory(*args, **kwargs)
        except (Unavailable, FannUnavailable) as exc:
            self.skip(peer, str(exc))
            return None

    # ---- sections ---------------------------------------------------------------------------------------------

    def checks(self) -> None:
        """Agreement of FANN and of the Python peers with annfast after one short epoch."""
        say("\n## agreement checks")
        n = self.cfg["check_rows"]
        out: dict = {"fann": {}, "peers": {}}
        for name, sizes in self.shapes.items():
            X, Y = make_data(sizes, n)
            w = initial_weights(sizes)
            label = shape_label(name)
            if self.fann_ok:
                out["fann"][label] = checks.fann_agreement(name, sizes, w, X, Y, n)
            out["peers"][label] = checks.peer_agreement(sizes, w, X, Y, n)
            say(f"  {label}: done")
        self.results["checks"] = out

    def _throughput(self, name: str, sizes, specs, rows: int, section: str) -> dict:
        """Interleave measurements for one shape; specs: key -> (peer name, factory, method name, row count)."""
        cfg = self.cfg
        X, Y = make_data(sizes, rows)
        w = initial_weights(sizes)
        measures, counts, warm, objects = {}, {}, {}, []
        for key, (peer, factory, method, count) in specs.items():
            obj = self._optional(peer, factory, sizes, w, X, Y)
            if obj is None:
                continue
            objects.append(obj)
            measures[key] = getattr(obj, method)
            counts[key] = count
            warm[key] = min(count, cfg["warmup_rows"])
        label = shape_label(name)
        try:
            times = timing.interleave(measures, counts, cfg["reps"], warm,
                                      progress=lambda note: say(f"  [{section}] {label}: {note}"))
        finally:
            for obj in objects:
                if isinstance(obj, Fann):
                    obj.close()
        names = report.PER_SAMPLE_PEERS if section == "per-sample" else report.MINIBATCH_PEERS
        peers = {}
        for key, ts in times.items():
            med = timing.median(ts)
            peers[key] = {"name": names[key][0], "dtype": names[key][1], "rows": counts[key],
                          "times_s": ts, "median_s": med, "samples_per_s": counts[key] / med}
        return {"label": label, "sizes": list(sizes), "peers": peers}

    def per_sample(self) -> None:
        """Per-sample SGD epochs of every implementation, per shape."""
        say("\n## per-sample SGD")
        out = {}
        for name, sizes in self.shapes.items():
            fast, slow = self.cfg["fast_rows"][name], self.cfg["slow_rows"][name]
            specs = {
                "annfast_fit_f32": ("annfast", lambda *a: Annfast(*a, dtype="float32"), "fit", fast),
                "annfast_fit_f64": ("annfast", lambda *a: Annfast(*a, dtype="float64"), "fit", fast),
                "annfast_fit_shuffled_f32": ("annfast", lambda *a: Annfast(*a, dtype="float32"), "fit_shuffled", fast),
                "annfast_fit_momentum_f32": ("annfast", lambda *a: Annfast(*a, dtype="float32"), "fit_momentum", fast),
                "annfast_train_step_f32": ("annfast", lambda *a: Annfast(*a, dtype="float32"), "train_steps", fast),
                "fann_f32": ("FANN", lambda *a, n=name: Fann(*a, dtype="float32", tag=n), "sgd_epoch", fast),
                "fann_f64": ("FANN", lambda *a, n=name: Fann(*a, dtype="float64", tag=n), "sgd_epoch", fast),
                "numpy_f32": ("NumPy", lambda *a: NumpyMLP(*a, dtype="float32"), "sgd_epoch", slow),
                "torch_f32": ("PyTorch", lambda *a: TorchMLP(*a, dtype="float32"), "sgd_epoch", slow),
                "sklearn_f32": ("scikit-learn", lambda *a: SklearnMLP(*a, dtype="float32"), "sgd_epoch", slow),
            }
            out[name] = self._throughput(name, sizes, specs, max(fast, slow), "per-sample")
            self.results["per_sample"] = out

    def minibatch(self) -> None:
        """Mini-batch (32) SGD epochs on the medium shape."""
        if MINIBATCH_SHAPE not in self.shapes:
            return
        say("\n## mini-batch SGD")
        n = self.cfg["minibatch_rows"]
        specs = {
            "annfast_fit_f32": ("annfast", lambda *a: Annfast(*a, dtype="float32"), "fit_minibatch", n),
            "torch_f32": ("PyTorch", lambda *a: TorchMLP(*a, dtype="float32"), "minibatch_epoch", n),
            "sklearn_f32": ("scikit-learn", lambda *a: SklearnMLP(*a, dtype="float32", batch_size=32), "sgd_epoch",
                            n),
        }
        name = MINIBATCH_SHAPE
        self.results["minibatch"] = {name: self._throughput(name, self.shapes[name], specs, n, "mini-batch")}

    def latency(self) -> None:
        """Single-row predict and train_step latency from Python (float32)."""
        shapes = [s for s in LATENCY_SHAPES if s in self.shapes]
        if not shapes:
            return
        say("\n## single-row latency")
        out = {}
        for name in shapes:
            sizes = self.shapes[name]
            X, Y = make_data(sizes, 1024)
            w = initial_weights(sizes)
            af = Annfast(sizes, w, X, Y, "float32")
            calls = {"annfast_predict": af.predict_calls, "annfast_predict_one": af.predict_one_calls}
            for key, peer, cls in (("numpy_predict", "NumPy", NumpyMLP), ("torch_predict", "PyTorch", TorchMLP),
                                   ("sklearn_predict", "scikit-learn", SklearnMLP)):
                obj = self._optional(peer, cls, sizes, w, X, Y, "float32")
                if obj is not None:
                    calls[key] = obj.predict_calls
            calls["annfast_train_step"] = af.train_step_calls
            counts = {key: timing.calibrate(f, self.cfg["latency_batch_s"]) for key, f in calls.items()}
            label = shape_label(name)
            times = timing.interleave(calls, counts, self.cfg["latency_reps"])
            say(f"  [latency] {label}: done")
            out[name] = {"label": label, "calls": {
                key: {"name": report.LATENCY_CALLS[key], "calls_per_batch": counts[key], "batch_times_s": ts,
                      "us_per_call": timing.median(ts) / counts[key] * 1e6} for key, ts in times.items()}}
        self.results["latency"] = out

    def threads(self) -> None:
        """Multi-threaded fit: speed-ups at 2 threads (medium, large) and test accuracy at 1 and 2 threads."""
        say("\n## threads")
        meter = machine.OtherLoad()
        meter.start()
        cpus = timing.available_cpus()
        out: dict = {"threads": parallel.THREADS, "cpus": cpus, "sync_every": parallel.default_sync_every(),
                     "reps": self.cfg["reps"], "load_at_start": machine.load_state(machine.load_average()),
                     "busy_cores": machine.BUSY_CORES, "noise_rule": {"sds": parallel.NOISE_SDS,
                                                                      "floor": parallel.NOISE_FLOOR},
                     "speedup": {}, "accuracy": {}}
        if cpus < parallel.THREADS:
            say(f"  this process may use {cpus} CPU(s): {parallel.THREADS} threads share them, so no speed-up")
        for name in parallel.SPEED_SHAPES:
            if name in self.shapes:
                out["speedup"][name] = parallel.speedups(name, self.cfg["thread_rows"][name], self.cfg["reps"],
                                                         self.cfg["warmup_rows"], say)
                for key, f in out["speedup"][name]["failed"].items():
                    self.skipped[f"threads {name} {key}"] = (
                        f"annfast fit(batch_size={f['batch_size']}, n_threads={f['n_threads']}, "
                        f"hogwild={f['hogwild']}) on {shape_label(name)}: {f['why']}")
        seeds = list(range(self.cfg["accuracy_seeds"]))
        sources = {"digits": parallel.digits_data, parallel.FANN_SET: self._fann_set}
        for name, load in sources.items():
            try:
                data = load()
            except parallel.DataUnavailable as exc:
                self.skip(f"accuracy on {name}", str(exc))
                continue
            out["accuracy"][name] = parallel.accuracy(name, data, seeds, say)
        out["other_cores"] = meter.stop()
        self.results["threads"] = out

    def _fann_set(self) -> dict:
        name = parallel.FANN_SET
        where = shown_path(self.fann_dir, REPO)
        if not (self.fann_dir / f"{name}.train").is_file() or not (self.fann_dir / f"{name}.test").is_file():
            raise parallel.DataUnavailable(f"no {name}.train / {name}.test in {where} (--fann-dir)")
        try:
            return parallel.fann_data(self.fann_dir, name)
        except (OSError, ValueError) as exc:
            raise parallel.DataUnavailable(f"cannot read {name}.train / {name}.test in {where}: {exc}") from None

    def sample_limits(self) -> None:
        """Run limits.c once; the limits section keeps the best figures of all such runs."""
        if "limits" in self.skipped:
            return
        try:
            self.limit_samples.append(limits.sample(self.shapes, quick=self.results["settings"]["quick"]))
        except limits.LimitsUnavailable as exc:
            self.skip("limits", str(exc))

    def limits(self) -> None:
        """FMA peak and weight-sweep bandwidths (best of a run at the start and one now), each shape's limit."""
        say("\n## machine limits")
        self.sample_limits()
        if not self.limit_samples:
            return
        self.results["limits"] = limits.combine(self.limit_samples, self.shapes)
        per_sample = self.results.get("per_sample", {})
        for name, per_dtype in self.results["limits"]["shapes"].items():
            for dtype, lim in per_dtype.items():
                key = "annfast_fit_f32" if dtype == "float32" else "annfast_fit_f64"
                fit = per_sample.get(name, {}).get("peers", {}).get(key)
                lim["annfast_fraction"] = fit["samples_per_s"] / lim["limit_samples_per_s"] if fit else None

    def cliffs(self) -> None:
        """Each documented way of calling annfast against the plain float32 path (see bench/cliffs.py)."""
        say("\n## cliffs")
        self.results["cliffs"] = cliffs.measure(self.results["settings"]["quick"], REPO, say, shapes=self.shapes,
                                                fann_dir=self.fann_dir)
        say(cliffs.markdown(self.results["cliffs"]))


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer rows and repetitions (under a minute; a smoke test, not for the numbers)")
    p.add_argument("--only", default=",".join(SHAPES), help=f"comma-separated shapes (default: {','.join(SHAPES)})")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated sections (default: all of "
                   f"{','.join(SECTIONS)})")
    p.add_argument("--reps", type=int, default=0, help="repetitions per measurement (default: 7, quick: 3)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for latest.json, latest.md and throughput.png (default: bench/results, or "
                        "bench/build/quick-results with --quick)")
    p.add_argument("--no-chart", action="store_true", help="do not draw throughput.png")
    p.add_argument("--no-merge", action="store_true",
                   help="with --sections or --only, replace latest.json and latest.md by this run's results instead of "
                        "merging them into the previous ones")
    p.add_argument("--fann-dir", type=Path, default=REPO / FANN_DIR,
                   help=f"folder of the FANN/PROBEN1 data files ({parallel.FANN_SET}.train / .test) for the threads "
                        f"section's accuracy runs (default: {FANN_DIR.as_posix()} relative to the repository root)")
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for bad, known, what in ((set(args.only) - set(SHAPES), SHAPES, "shape"),
                             (set(args.sections) - set(SECTIONS), SECTIONS, "section")):
        if bad:
            p.error(f"unknown {what} {', '.join(sorted(bad))}; choose from {', '.join(known)}")
    if args.reps < 0:
        p.error("--reps must be positive")
    if args.out is None:
        args.out = HERE / "build" / "quick-results" if args.quick else HERE / "results"
    return args


def main(argv=None) -> int:
    """Run the benchmark; returns the exit code (0 whatever the targets say: they are reported, not enforced)."""
    args = parse_args(argv)
    start = time.perf_counter()
    load = machine.load_state(machine.load_average())     # before this run adds its own load
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    run = Run(args)
    info = machine.collect(compiler_version(), fann_version(), PINNED_CORE)
    info["cpus_available"] = timing.available_cpus()
    run.results["machine"] = info
    run.results["load"] = load
    machine_lines = machine.summary_lines(info)
    say("annfast benchmark (" + run.results["settings"]["mode"] + " mode)")
    for line in machine_lines:
        say("  " + line)
    if PINNED_CORE is None:
        say("  (this OS cannot pin a process to a core: running unpinned)")
    say("  " + report.load_line(load))
    # annfast picks its kernel variant per network (wide rows: AVX-512) and dtype
    def kernel(sizes, dtype):
        return Annfast(sizes, initial_weights(sizes), *make_data(sizes, 1), dtype=dtype).kernel

    info["annfast_kernel"] = "; ".join(
        f"{dtype}: " + ", ".join(f"{name} {kernel(sizes, dtype)}" for name, sizes in run.shapes.items())
        for dtype in ("float32", "float64"))
    say(f"  annfast kernels: {info['annfast_kernel']}")
    if "limits" in args.sections:
        run.sample_limits()          # once now and once at the end: the limits keep the best of both
    section_s = {}
    for section in SECTIONS:
        if section in args.sections:
            t0 = time.perf_counter()
            getattr(run, section.replace("-", "_"))()
            section_s[section] = round(time.perf_counter() - t0, 2)
            say(f"  ({section}: {section_s[section]:.1f} s)")
    results = run.results
    results["targets"] = targets.evaluate(results)
    results["elapsed_s"] = time.perf_counter() - start
    results["section_s"] = section_s
    this_run = {"date": info["date"], "mode": results["settings"]["mode"], "reps": results["settings"]["reps"],
                "load": load["load_average"], "annfast": info["annfast"], "annfast_kernel": info["annfast_kernel"]}
    results["section_runs"] = {s: {**this_run, "parts": report.section_parts(results, s)}
                               for s in section_s if report.SECTION_KEYS[s] in results}
    say(report.console_report(results))
    say(report.summary_text(results))

    args.out.mkdir(parents=True, exist_ok=True)
    partial = set(args.sections) != set(SECTIONS) or set(args.only) != set(SHAPES)
    previous = args.out / "latest.json"
    if partial and not args.no_merge and previous.is_file():
        try:
            old = json.loads(previous.read_text())
        except (OSError, ValueError) as exc:
            say(f"cannot read the previous {previous.name} ({exc}): writing this run's results alone")
        else:
            results = report.merge_results(old, results, list(SHAPES))
            results["targets"] = targets.evaluate(results)
            kept = [s for s in SECTIONS if s not in section_s and s in results["section_runs"]]
            say(f"merged into the previous {previous.name}: " + (", ".join(kept) or "nothing") + " kept from "
                "earlier runs (--no-merge to replace it)")
    report.write_json(args.out / "latest.json", results)
    (args.out / "latest.md").write_text(report.markdown_report(results, machine_lines))
    written = ["latest.json", "latest.md"]
    if "per-sample" not in args.sections:
        say("no chart: the per-sample section did not run (throughput.png left as it was)")
    elif not args.no_chart:
        why = report.chart(args.out / "throughput.png", results)
        if why:
            say(f"no chart: {why}")
        else:
            written.append("throughput.png")
    shown = args.out.resolve()
    shown = shown.relative_to(Path.cwd()) if shown.is_relative_to(Path.cwd()) else shown
    say(f"\nwrote {', '.join(written)} to {shown}/ in {results['elapsed_s']:.0f} s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
