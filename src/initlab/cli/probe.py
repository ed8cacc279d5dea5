"""``initlab probe``: probe a model under several initialization schemes, side by side.

Prints the per-layer table and the verdicts, and writes ``probe.json``,
``probe_depth.png`` and ``probe_histograms.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from initlab._validation import check_int

if TYPE_CHECKING:
    from rich.console import Console


def _schemes(text: str) -> list[str]:
    """Split a comma-separated list at top-level commas only (arguments may hold commas).

    >>> _schemes("zeros,he_uniform(mode=fan_out, a=0),xavier")
    ['zeros', 'he_uniform(mode=fan_out, a=0)', 'xavier']
    """
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` -> ``(3, 32, 32)``.

    >>> _shape("3, 32,32")
    (3, 32, 32)
    """
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input-shape={text!r} is not valid; allowed: sizes separated by commas, "
            "e.g. 3,32,32."
        ) from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(
            f"--input-shape={text!r} is not valid; allowed: positive sizes, e.g. 3,32,32."
        )
    return dims


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="mlp",
        help="built-in 'mlp' or 'cnn', or a factory 'package.module:function' (needs "
        "--input-shape; the current directory is importable) (default: mlp)",
    )
    parser.add_argument("--depth", type=int, default=30, help="layers of a built-in model (30)")
    parser.add_argument("--width", type=int, default=256, help="units or channels (256)")
    parser.add_argument("--activation", default="relu", help="built-in model's activation (relu)")
    parser.add_argument(
        "--input-shape", type=_shape, default=None, help="one sample's shape, e.g. 3,32,32"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (256)")
    parser.add_argument(
        "--schemes",
        type=_schemes,
        default=["zeros", "random", "xavier", "he"],
        help="comma-separated scheme names; 'default' keeps the model's own init "
        "(default: zeros,random,xavier,he)",
    )
    parser.add_argument("--seed", type=int, default=0, help="weights, inputs, projection (0)")
    parser.add_argument("--mode", choices=("train", "eval"), default="train")
    parser.add_argument(
        "--loss", choices=("random_projection", "sum_of_squares"), default="random_projection"
    )
    parser.add_argument("--vanishing", type=float, default=1e-2, help="threshold (1e-2)")
    parser.add_argument("--exploding", type=float, default=1e2, help="threshold (1e2)")
    parser.add_argument("--saturation", type=float, default=0.99, help="fraction of range")
    parser.add_argument("--depths", type=int, default=5, help="depths in the histograms (5)")
    parser.add_argument("--out", default="probe-results", help="output folder (probe-results)")
    parser.add_argument(
        "--layers", action="store_true", help="also print each scheme's full per-layer table"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    try:
        return _run(args, console)
    except (ValueError, TypeError) as error:
        print(f"initlab probe: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, console: Console) -> int:
    import torch

    from initlab.torch.probe import Thresholds, compare
    from initlab.torch.probe.models import build_model

    batch = check_int("--batch-size", args.batch_size, minimum=1)
    depths = check_int("--depths", args.depths, minimum=1)
    thresholds = Thresholds(args.vanishing, args.exploding, args.saturation)
    if ":" in args.model and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    built = build_model(
        args.model,
        depth=args.depth,
        width=args.width,
        activation=args.activation,
        input_shape=args.input_shape,
    )
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.randn((batch, *built.input_shape), generator=generator)
    console.print(f"[bold]model[/]: {built.description}; batch {tuple(inputs.shape)}")
    result = compare(
        built.factory,
        inputs,
        args.schemes,
        seed=args.seed,
        loss_fn=args.loss,
        thresholds=thresholds,
        mode=args.mode,
        progress=True,
    )
    if args.layers:
        for report in result.reports.values():
            console.print(report)
    console.print(result)
    paths = result.save(args.out, depths=depths)
    for kind, path in paths.items():
        console.print(f"wrote {kind}: {path}")
    return 0
