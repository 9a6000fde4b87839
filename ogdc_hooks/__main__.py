"""`python -m ogdc_hooks` is `ogdc-hooks`."""

import sys

from ogdc_hooks.cli.main import main

sys.exit(main())
