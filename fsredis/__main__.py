"""python -m fsredis: the fsredis command."""

import sys

from fsredis.cli import main

sys.exit(main())
