"""Entry point of the local AWS stand-in: moto's server with the product's extensions."""

from __future__ import annotations

import argparse
import importlib
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
    args = parser.parse_args(argv)
    install_extensions()
    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
