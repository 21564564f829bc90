"""``python -m rtcdn.config``: print the configuration keys."""

import sys

from . import main

sys.exit(main())
