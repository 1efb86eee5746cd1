"""`python -m radsynth.train ...` and `accelerate launch -m radsynth.train ...`."""

from __future__ import annotations

import sys

from radsynth.train.main import main

sys.exit(main())
