"""`python -m gateway ...` is `checkpoint-gateway ...`."""

import sys

from gateway.cli import main

sys.exit(main())
