"""`python -m shared` runs the license-guard command line."""

import sys

from shared.cli.main import main

sys.exit(main())
