"""Entry point of `python -m cam_core`."""

import sys

from .cli import main

sys.exit(main())
