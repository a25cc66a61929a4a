"""`python -m actors`: the same command line as the `inference-supervisor` script.

The one module of `actors` outside `actors.app` that imports it: it is the entry point.
"""

import sys

from actors.app.cli import main

sys.exit(main())
