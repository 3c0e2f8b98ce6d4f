"""``python -m fuzz codec|pipeline ...``: run a fuzz campaign (see fuzz/README.md)."""

from fuzz.run import main

raise SystemExit(main())
