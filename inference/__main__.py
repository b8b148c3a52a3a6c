"""``python -m inference serve`` (what the ``fraudrail-inference`` console script runs)."""

from inference.cli import main

raise SystemExit(main())
