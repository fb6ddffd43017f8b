"""Refining whole images with a trained decoder, and the `hbd` command.

* `refine`: decoded image -> blocks -> decoder -> refined image (NumPy side);
* `graph_refine`: the same entirely in the TF graph (for serving);
* `serving`: SavedModel export and load, the shipped pretrained decoders;
* `guards`: where the decoder cannot know better, keep the codec's output;
* `cli`: the `hbd` console script (also ``python -m tf_hbd``).

Import the modules themselves; this package imports nothing.
"""
