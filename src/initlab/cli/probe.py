"""``initlab probe``: probe a model under several initialization schemes, side by side.

Prints the per-layer table and the verdicts, and writes ``probe.json``,
``probe_depth.png`` and ``probe_histograms.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TYPE_CHECKING

from initlab._validation import check_int
from initlab.cli._checks import UsageError, output_folder

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
    """``"3,32,32"`` (or ``"3x32x32"``) -> ``(3, 32, 32)``; an empty or non-integer size is
    an error, never dropped.

    >>> _shape("3, 32,32"), _shape("3x32x32")
    ((3, 32, 32), (3, 32, 32))
    """
    try:
        dims = tuple(int(d) for d in re.split(r"[,x]", text))
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
    parser.add_argument(
        "--wide", action="store_true", help="tables at full width, whatever the terminal"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON (for machines)"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    plan = _check(args)  # every argument and the output folder, before any work
    console = Console() if sys.stdout.isatty() and not args.wide else None
    return _run(args, plan, console)


def _check(args: argparse.Namespace) -> dict:
    """Check every argument; raises UsageError naming the first bad one."""
    import torch

    from initlab.torch.probe import Thresholds
    from initlab.torch.probe.models import ACTIVATIONS, BUILTIN_MODELS, build_model
    from initlab.torch.probe.schemes import check_scheme

    try:
        counts = {"--depth": args.depth, "--width": args.width,
                  "--batch-size": args.batch_size, "--depths": args.depths}  # fmt: skip
        for option, value in counts.items():
            check_int(option, value, minimum=1)
        check_int("--seed", args.seed, minimum=0)
        thresholds = Thresholds(args.vanishing, args.exploding, args.saturation)
        if args.model in BUILTIN_MODELS and args.activation not in ACTIVATIONS:
            allowed = ", ".join(ACTIVATIONS)
            raise ValueError(f"--activation={args.activation!r} is not valid; allowed: {allowed}.")
        for scheme in args.schemes:
            check_scheme(scheme)
        if not args.schemes:
            raise ValueError("--schemes is empty; allowed: comma-separated scheme names.")
        if ":" in args.model and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        built = build_model(
            args.model,
            depth=args.depth,
            width=args.width,
            activation=args.activation,
            input_shape=args.input_shape,
        )
    except (ValueError, TypeError) as error:
        raise UsageError(_options(str(error))) from None
    sample = torch.randn((2, *built.input_shape), generator=torch.Generator().manual_seed(0))
    try:  # the user's factory and forward, once on 2 samples: their mistakes are usage errors
        model = built.factory()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"it returned {type(model).__name__}, not a torch.nn.Module")
        with torch.no_grad():
            model.eval()(sample)
    except Exception as error:
        where = "--model" if ":" in args.model else "the model"
        raise UsageError(
            f"{where}={args.model!r} with --input-shape={','.join(map(str, built.input_shape))}"
            f" failed: {type(error).__name__}: {error} (run the factory in Python to see where)"
        ) from None
    out = output_folder("--out", args.out)
    return {"built": built, "thresholds": thresholds, "out": out}


def _options(message: str) -> str:
    """Name the command-line option in a library message: ``input_shape=`` -> ``--input-shape``.

    >>> _options("model='x' is a user factory: input_shape is required")
    "--model='x' is a user factory: --input-shape is required"
    """
    for name in ("model", "input_shape", "activation", "vanishing", "exploding", "saturation",
                 "depth", "width"):  # fmt: skip
        flag = "--" + name.replace("_", "-")
        message = re.sub(rf"(?<![-\w]){name}(?=[= ])", flag, message)
    return message


def _run(args: argparse.Namespace, plan: dict, console: Console | None) -> int:
    import torch

    from initlab._format import to_text, wide_width
    from initlab.torch.probe import compare

    built = plan["built"]
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.randn((args.batch_size, *built.input_shape), generator=generator)

    def show(renderable: object) -> None:
        if args.json:
            return
        if console is not None:
            console.print(renderable)
        else:  # a pipe, a file or --wide: full width, nothing folded
            print(to_text(renderable, width=wide_width(renderable)))

    show(f"model: {built.description}; batch {tuple(inputs.shape)}")
    result = compare(
        built.factory,
        inputs,
        args.schemes,
        seed=args.seed,
        loss_fn=args.loss,
        thresholds=plan["thresholds"],
        mode=args.mode,
        progress=True,
    )
    if args.layers:
        for report in result.reports.values():
            show(report)
    show(result)
    paths = result.save(plan["out"], depths=args.depths)
    if args.json:
        print(json.dumps(result.to_dict()))
    for kind, path in paths.items():
        (print if not args.json else _stderr)(f"wrote {kind}: {path}")
    return 0


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)
