"""folder_patches: patch blocks of any folder of images (--manual_dir)."""
