"""`python -m cnnlib.grading ...`: see cnnlib.grading.cli."""

import sys

from cnnlib.grading import main

sys.exit(main())
