"""The ``annfast`` command line: ``annfast demo`` trains on the bundled house-price data."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``annfast`` command."""
    parser = argparse.ArgumentParser(prog="annfast", description="Fast per-sample training of small MLPs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train a 4-16-1 network on the bundled house-price data (the default)")
    demo.add_argument("--epochs", type=int, default=40, help="passes over the training rows (default 40)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffling")
    demo.add_argument("--learning-rate", type=float, default=0.01, help="SGD step size (default 0.01)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``annfast`` command; returns the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "demo"):
        from .demo import run_demo

        run_demo(epochs=getattr(args, "epochs", 40), seed=getattr(args, "seed", 0),
                 learning_rate=getattr(args, "learning_rate", 0.01))
    return 0
