"""Images and the legacy codecs the decoder refines.

* `images`: reading image files into 8-bit gray (`load_image`, `list_images`);
* `legacy`: JPEG and JPEG 2000 at a quality or a target bit rate (`encode`,
  `decode`, `roundtrip`);
* `codec_setting`: the setting a decoder is told, read from the bitstream;
* `jpeg_constraint`: the JPEG quantization constraint and block-grid
  symmetries;
* `patches`: images <-> d x d patch grids <-> 3 x 3 patch blocks.

Import the modules themselves (``from tf_hbd.codecs import legacy``); this
package imports nothing so that entry points stay fast.
"""
