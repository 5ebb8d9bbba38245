"""``python -m bot.cli``: the same as the ``safetybot`` console script."""

import sys

from bot.cli.main import main

sys.exit(main())
