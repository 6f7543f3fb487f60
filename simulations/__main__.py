"""``python -m simulations``: the simulations command line."""

from .cli import main

raise SystemExit(main())
