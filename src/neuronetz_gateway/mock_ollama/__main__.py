"""``python -m neuronetz_gateway.mock_ollama [--host H] [--port N] [--model NAME ...]``"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from neuronetz_gateway.mock_ollama.runner import run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m neuronetz_gateway.mock_ollama",
        description="Serve the project's mock Ollama until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="a model to offer (repeatable; default: the built-in three)",
    )
    parser.add_argument("--require-token", default=None, metavar="TOKEN")
    args = parser.parse_args(argv)
    if args.models:
        run(args.host, args.port, models=args.models, require_token=args.require_token)
    else:
        run(args.host, args.port, require_token=args.require_token)


if __name__ == "__main__":
    main()
