"""``python -m mobilekit``: the command line."""
import sys

from mobilekit.cli import main

sys.exit(main())
