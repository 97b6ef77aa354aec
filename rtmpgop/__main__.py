"""``python -m rtmpgop``."""

from rtmpgop.cli import main

raise SystemExit(main())
