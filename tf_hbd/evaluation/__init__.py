"""Measuring codecs, baselines and decoders: the paper's tables and figures.

* `metrics`: PSNR, SSIM, MS-SSIM with one convention;
* `metric_cache`: metrics of image pairs kept on disk across runs;
* `codec_cache`: codec round trips kept on disk across runs;
* `disk_cache`: the folder, entry names and atomic writes they share;
* `systems`: the one `evaluate`: codecs (at a rate, a quality or another
  system's rate), neural baselines and trained decoders on image folders;
* `study`: Table 3, Table 1, Figure 1 and the RD curves in one call;
* `main`: the evaluation entry point (``hbd-evaluate``,
  ``python -m tf_hbd.evaluation``, ``scripts/evaluate.py``);
* `cards`: a decoder's gain over its codec for its model card;
* `plots`: the figures;
* `rd_curves`: a rate-distortion curve read at a rate (PCHIP in log bpp,
  no extrapolation) and BD-PSNR;
* `no_harm`: the do-no-harm check;
* `golden`: pinned figures of the shipped models;
* `stats`: hierarchical bootstrap intervals over seeds and images;
* `claims`: the paper's claims (a)-(d) decided from run records;
* `study_report`: the seeded study's tables, figures and claims from its
  records (`tf_hbd.workflows.study_runner`).

Import the modules themselves; this package imports nothing.
"""
