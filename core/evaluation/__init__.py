"""Generators → scores: the lab's ArcFace protocol, its report, and one-pair swaps."""
