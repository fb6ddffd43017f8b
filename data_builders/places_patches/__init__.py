"""places_patches: the paper's training data (Places365 + RAISE) as blocks."""
