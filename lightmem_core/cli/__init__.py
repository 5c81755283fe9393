"""The ``lightmem`` command line: ``lightmem --help`` lists the commands.

Importing this package loads typer and rich, not torch or chromadb.
"""

from ._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``lightmem`` script."""
    app(prog_name="lightmem")
