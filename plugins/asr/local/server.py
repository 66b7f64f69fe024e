"""Entry point of the local AWS stand-in: moto's server with the product's extensions."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil

from moto.server import main as moto_main

import asr.local


def install_extensions() -> None:
    """Install every ``asr.local.*_ext`` module: each extends one part of moto."""
    for module in pkgutil.iter_modules(asr.local.__path__):
        if module.name.endswith("_ext"):
            importlib.import_module(f"asr.local.{module.name}").install()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with the asr extensions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: under load the log's lock cost a sixth of the CPU)",
    )
    args = parser.parse_args(argv)
    install_extensions()
    if not args.access_log:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"asr stand-in: moto on http://{args.host}:{args.port}", flush=True)
    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
