"""`python -m sim` is `checkpoint-sim`."""

import sys

from sim.cli import main

sys.exit(main())
