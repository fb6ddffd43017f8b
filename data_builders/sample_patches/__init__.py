"""sample_patches: patch blocks of the photographs shipped with scikit-image."""
