"""Real pixels in the terminal: protocol detection, sixel and kitty encoders, per-frame output."""
