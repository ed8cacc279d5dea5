"""``initlab demo [NAME ...]``: run the studies, print their tables, write JSON and PNGs.

With no NAME, the quick versions of all three studies (about 1.5 minutes on 2 cores).
Writes ``<out>/<study>.json`` (every number), ``<out>/*.png`` (the plots) and
``<out>/demo.json`` (what ran, with timings and the files written).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from initlab._validation import check_int, choice_error
from initlab.cli._checks import output_folder

#: The studies, in the order ``initlab demo`` runs them (see initlab.studies.STUDIES).
STUDY_NAMES = ("circles", "depth", "propagation")
DEFAULT_OUT = "initlab-out"


def _seed(text: str) -> int:
    try:
        return check_int("--seed", int(text), minimum=0)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--seed={text!r} is not valid; allowed: an integer >= 0."
        ) from error


def _study(text: str) -> str:
    if text not in STUDY_NAMES:
        raise argparse.ArgumentTypeError(str(choice_error("NAME", text, STUDY_NAMES)))
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=_study,
        help=f"studies to run: {', '.join(STUDY_NAMES)} (default: all)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", dest="full", action="store_false", help="quick versions (the default)"
    )
    mode.add_argument(
        "--full", dest="full", action="store_true", help="full versions (about 8 minutes)"
    )
    parser.set_defaults(full=False)
    parser.add_argument("--seed", type=_seed, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        help=f"output folder (default ./{DEFAULT_OUT})",
    )
    parser.add_argument("--no-progress", action="store_true", help="draw no progress bars")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from initlab.studies import STUDIES, Bars, run_study
    from initlab.studies._common import write_json

    names = list(dict.fromkeys(args.names)) or list(STUDY_NAMES)
    out: Path = output_folder("--out", args.out)  # before any work; UsageError -> stderr
    console = Console() if sys.stdout.isatty() else Console(width=120)
    mode = "full" if args.full else "quick"
    console.print(
        f"[bold]initlab demo[/bold]: {', '.join(names)} ({mode}, seed {args.seed}) -> {out}/"
    )
    index = {"mode": mode, "seed": args.seed, "studies": {}}
    start = time.perf_counter()
    with Bars(console, enabled=not args.no_progress) as bars:
        for name in names:
            begin = time.perf_counter()
            result = run_study(name, quick=not args.full, seed=args.seed, bars=bars)
            files = result.save(out)
            seconds = time.perf_counter() - begin
            console.rule(f"[bold]{name}[/bold]: {STUDIES[name][2]}")
            for table in result.tables():
                console.print(table)
            for line in result.findings():
                console.print(f"  - {line}")
            console.print(f"  [dim]{seconds:.1f} s; wrote {', '.join(p.name for p in files)}[/dim]")
            index["studies"][name] = {
                "seconds": round(seconds, 2),
                "files": [p.name for p in files],
            }
    total = time.perf_counter() - start
    index["seconds"] = round(total, 2)
    write_json(out / "demo.json", index)
    console.print(f"[bold]done[/bold] in {total:.1f} s: tables above, JSON and PNGs in {out}/")
    return 0
