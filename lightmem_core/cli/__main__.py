"""``python -m lightmem_core.cli``: the same as the ``lightmem`` script."""

from . import main

main()
