"""`python -m shared` runs the license-guard command line."""

import sys

from shared.cli import main

sys.exit(main())
