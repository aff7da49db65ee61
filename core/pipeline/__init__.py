"""Film → faces, stage by stage: decode → detect → align → quality → thumbs; extract runs them."""
