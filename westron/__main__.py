"""`python -m westron ...`: the `westron` command, for launchers that start modules (torchrun -m westron train ...)."""

import sys

from westron.cli import main

sys.exit(main())
