"""`python -m flurka_export ...` is the `flurka-export` command."""

import sys

from .cli.main import main

sys.exit(main())
