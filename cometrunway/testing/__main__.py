"""``python -m cometrunway.testing``: serve a fake CometAPI until SIGINT or SIGTERM."""

from ._cli import main

raise SystemExit(main())
