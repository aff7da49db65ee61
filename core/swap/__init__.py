"""Face swapping: the SimSwap generator, its identity network (ArcFace) and their I/O convention.

Only this package (and functions that call into it) imports torch, so extraction never needs it.
"""
