"""The ``lightmem`` command line (being written)."""


def main() -> None:
    raise SystemExit("the lightmem CLI is being written")
