"""Entry point of `python -m cam_core`."""

import sys

from cam_core.cli import main

sys.exit(main())
