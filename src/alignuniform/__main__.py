"""`python -m alignuniform` (what torchrun launches) runs the CLI."""

import sys

from alignuniform.cli import main

sys.exit(main())
