"""Writes a benchmark run's figures into the README: the speed table and the threads table.

    python bench/readme.py [results.json] [--readme README.md] [--check]

The README marks each generated block with ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; this replaces
what lies between the marks (default results: bench/results/latest.json). ``--check`` changes nothing and exits
with 1 if the README does not match the results.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from report import fmt_rate

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("tiny", "small", "medium", "large")
PEERS = (("fann_f32", "FANN"), ("numpy_f32", "NumPy"), ("torch_f32", "PyTorch"), ("sklearn_f32", "scikit-learn"))


def times(x: float | None) -> str:
    """A speed ratio for people: ``12.2×``, ``1,944×``."""
    if x is None:
        return "-"
    return f"{x:,.0f}×" if x >= 1000 else f"{x:.3g}×"


def _rate(peers: dict, key: str) -> float | None:
    return peers[key]["samples_per_s"] if key in peers else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def speed_block(res: dict) -> str:
    """The per-sample table, the mini-batch and latency line and the targets line."""
    lines = ["| shape | annfast `fit` float32 | " + " | ".join(f"vs {name}" for _, name in PEERS) +
             " | float64 / float32 |", "|---" * (3 + len(PEERS)) + "|"]
    for shape in SHAPES:
        if shape not in res.get("per_sample", {}):
            continue
        entry = res["per_sample"][shape]
        peers = entry["peers"]
        ours = _rate(peers, "annfast_fit_f32")
        cells = [entry["label"], f"{fmt_rate(ours)} samples/s"]
        cells += [times(_ratio(ours, _rate(peers, key))) for key, _ in PEERS]
        f64 = _ratio(_rate(peers, "annfast_fit_f64"), ours)
        cells.append("-" if f64 is None else f"{f64:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    extra = []
    mb = res.get("minibatch", {}).get("medium")
    if mb:
        p = mb["peers"]
        ours = _rate(p, "annfast_fit_f32")
        vs = [f"{times(_ratio(ours, _rate(p, key)))} {name}" for key, name in
              (("torch_f32", "PyTorch"), ("sklearn_f32", "scikit-learn partial_fit")) if key in p]
        extra.append(f"Mini-batch 32 on the medium shape: {fmt_rate(ours)} samples/s ({', '.join(vs)}).")
    lat = res.get("latency", {})
    if lat:
        def us(shape: str, call: str) -> str | None:
            c = lat.get(shape, {}).get("calls", {}).get(call)
            if c is None:
                return None
            t = c["us_per_call"]
            return f"{t:.2f} µs ({shape})" if t < 10 else f"{t:.3g} µs ({shape})"
        one = [u for u in (us("tiny", "annfast_predict_one"), us("medium", "annfast_predict_one")) if u]
        step = us("tiny", "annfast_train_step")
        extra.append("From Python, one row: `predict_one` " + " and ".join(one) +
                     (f", `train_step` {step}." if step else "."))
    if extra:
        text += "\n" + _wrap(" ".join(extra)) + "\n"
    targets = [t for t in res.get("targets", []) if t["status"] in ("PASS", "FAIL")]
    if targets:
        fails = [t for t in targets if t["status"] == "FAIL"]
        line = (f"The issue's targets in this run: {len(targets) - len(fails)} pass, {len(fails)} fail" +
                (" — " + "; ".join(f"{t['target']} ({t['text']})" for t in fails) if fails else "") + ".")
        text += "\n" + _wrap(line) + "\n"
    return text


def threads_block(res: dict) -> str:
    """The threads table (indented under its list item) and the accuracy line."""
    th = res.get("threads", {})
    rows = ["  | shape | 1 thread | 2 threads, split (default) | 2 threads, merged | 2 threads, Hogwild "
            "| mini-batch 32: 1 → 2 threads |",
            "  |---|---|---|---|---|---|"]
    for shape in SHAPES:
        s = th.get("speedup", {}).get(shape)
        if not s:
            continue
        m = s["modes"]

        def with_speedup(key: str, m: dict = m) -> str:
            return f"{fmt_rate(m[key]['samples_per_s'])} ({m[key]['speedup']:.3g}×)" if key in m else "-"
        mb = (f"{fmt_rate(m['mb32_1']['samples_per_s'])} → {fmt_rate(m['mb32_split']['samples_per_s'])} "
              f"({m['mb32_split']['speedup']:.3g}×)" if "mb32_1" in m and "mb32_split" in m else "-")
        rows.append(f"  | {s['label']} | {fmt_rate(m['sgd_1']['samples_per_s'])} | {with_speedup('sgd_split')} | "
                    f"{with_speedup('sgd_merged')} | {with_speedup('sgd_hogwild')} | {mb} |")
    text = "\n".join(rows) + "\n"
    acc = th.get("accuracy", {})
    if acc:
        words = {"sgd_1": "with one thread", "sgd_split": "split", "sgd_merged": "merged", "sgd_hogwild": "Hogwild"}
        parts = []
        seeds = set()
        for name, a in acc.items():
            seeds.add(len(a["seeds"]))
            parts.append(f"{name} " + ", ".join(
                f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f} % {words.get(key, m['name'])}"
                for key, m in a["modes"].items()))
        text += ("\n  " + _wrap(f"Test accuracy after the same epochs ({'/'.join(map(str, sorted(seeds)))} seeds): " +
                                "; ".join(parts) + ".", indent="  ") + "\n")
    return text


def _wrap(text: str, width: int = 110, indent: str = "") -> str:
    out, line = [], ""
    for word in text.split(" "):
        if line and len(indent) + len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return ("\n" + indent).join(out)


BLOCKS = {"speed": speed_block, "threads": threads_block}


def render(readme: str, res: dict) -> str:
    """The README with every marked block regenerated from the results."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(.*?)(\s*<!-- /bench:{name} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"the README has no block <!-- bench:{name} --> ... <!-- /bench:{name} -->")
        body = make(res).rstrip("\n")
        readme = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(3), readme, count=1)
    return readme


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=str(ROOT / "bench" / "results" / "latest.json"))
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--check", action="store_true", help="exit with 1 if the README differs, change nothing")
    args = ap.parse_args(argv)
    res = json.loads(Path(args.results).read_text())
    path = Path(args.readme)
    old = path.read_text()
    new = render(old, res)
    if args.check:
        if new != old:
            print(f"{path.name} does not carry the figures of {Path(args.results).name}: run bench/readme.py")
            return 1
        return 0
    if new != old:
        path.write_text(new)
        print(f"updated {path.name} from {Path(args.results).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
