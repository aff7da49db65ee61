"""reelface: films in, clean identity-organised face data sets out."""

import os

# numpy's OpenBLAS threads spin for 2^28 cycles (~0.1 s of a core) when they start and after
# each job before they sleep; at 2^4 they sleep at once. Extraction makes no BLAS call large
# enough to share, and that spin cost a 2-core machine 0.2 s of CPU in a 2.2 s run (close-up-
# heavy bench film). Read once, when numpy loads its OpenBLAS; a value already set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
