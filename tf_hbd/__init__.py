"""tf_hbd: a hybrid neural iterative decoder that refines JPEG / JPEG 2000.

Reproduces and extends Mali, Ororbia, Kifer, Giles, "An Empirical Analysis of
Recurrent Learning Algorithms in Neural Lossy Image Compression Systems".

Data flows one way: image -> codec -> patches/blocks -> model -> refined
image -> metrics. Subpackage `__init__` files import nothing but
`tf_hbd.baselines`' (the shipped-model registry) and
`tf_hbd.training.algorithms`' (registering the algorithms): import the
modules. Nothing below `workflows` imports it. Shipped decoders live in
``tf_hbd/pretrained/``.

Module map: one line a module, in `tf_hbd.<name>` form
(`tf_hbd/module_map_test.py` fails when a module is added, moved or removed
without its line here).

  errors                      exception types, exit codes, the Ctrl-C handler
  arguments                   argparse errors as one line, exit 2
  quiet                       TF's log lines off unless --verbose; run_app
  testing                     the suite's children: SIGINT as a terminal sends it
  __main__                    ``python -m tf_hbd``: the `hbd` command

  codecs.images               reading images as gray uint8; `check_gray`
  codecs.legacy               JPEG / JPEG 2000 at a quality or a target bpp
  codecs.codec_setting        what the bitstream says about its noise
  codecs.jpeg_constraint      JPEG's quantization constraint, grid symmetries
  codecs.patches              patch grids and 3x3 blocks (paper, 3.1)

  data.roots                  the data root (--data_root, $TF_HBD_DATA), specs
  data.blocks_dataset         the patch-block datasets' shared logic and spec
  data.pipelines              input pipelines, image folders, `EvalImage`
  data.recompress             training images compressed afresh each epoch
  data.train_inputs           what a training run trains and validates on
  data.sample_images          the embedded photographs (scikit-image)
  data.synthetic              synthetic gray images (flat, text, graphics)
  data.stress_set             the do-no-harm stress set

  model.cells                 state cells (LSTM, GRU, Delta-RNN, Elman, MLP)
  model.decoder               the HBD, SNE, export and load of decoders
  model.sab_decoder           SAB's model: sparse attention over past states
  model.losses                the training objective (eqs. 17-19)

  training.algorithms.base           the learning algorithms' interface
  training.algorithms.bptt           back-propagation through time
  training.algorithms.sab            SAB's truncated backward pass
  training.algorithms.forward_mode   what RTRL, UORO and SnAp-1 share
  training.algorithms.rtrl           real-time recurrent learning (eqs. 12-14)
  training.algorithms.uoro           UORO (eqs. 15-16)
  training.algorithms.snap           SnAp-1, sparse approximate RTRL
  training.algorithms.testing_utils  helpers of the algorithms' tests
  training.config             run settings as data: `RunConfig`, `CONFIGS`
  training.trainer            the decoder's training (epochs, validation)
  training.loop               the one resumable loop (decoder and baselines)
  training.distributed        tf.distribute strategies and trainer
  training.checkpoints        resume from the newest intact checkpoint
  training.calibration        a residual decoder's correction strength
  training.flag_checks        train flags' checks and exit codes
  training.exports            a run's serving export and its metadata
  training.run_decoder        a run's decoder rebuilt from its checkpoints
  training.main               ``hbd-train``, ``python -m tf_hbd.training``
  training.__main__           ``python -m tf_hbd.training``

  inference.refine            whole-image refinement (Python loop)
  inference.graph_refine      whole-image refinement in the TF graph
  inference.serving           the serving SavedModel, shipped decoders
  inference.numpy_serving     the TensorFlow-free runtime of exports
  inference.guards            where the decoder cannot know better
  inference.cli               ``hbd`` (enhance, ...)

  evaluation.metrics          PSNR, SSIM, MS-SSIM
  evaluation.systems          the one `evaluate`: codecs, baselines, decoders
  evaluation.codec_cache      codec round trips kept on disk
  evaluation.metric_cache     metrics of image pairs kept on disk
  evaluation.disk_cache       what the two disk caches share
  evaluation.study            the paper's tables and figures in one call
  evaluation.step_sweep       Table 1's K sweep from one refinement pass
  evaluation.plots            RD curves, validation PSNR per epoch
  evaluation.rd_curves        an RD curve read at a rate (PCHIP in log bpp), BD-PSNR
  evaluation.cards            a decoder's gain, as its model card says
  evaluation.no_harm          the do-no-harm check
  evaluation.golden           pinned figures of the shipped models
  evaluation.stats            bootstrap intervals over seeds and images
  evaluation.claims           issue 14's claims decided from run records
  evaluation.study_report     the study's tables and figures from records
  evaluation.main             ``hbd-evaluate``
  evaluation.__main__         ``python -m tf_hbd.evaluation``

  baselines.codec_base        what GOOG and E2E codecs share
  baselines.container         the baselines' file format (HBNC, CRC-32)
  baselines.e2e               E2E (Balle et al. 2017), gray
  baselines.goog              GOOG (Toderici et al. 2017), gray
  baselines.goog_bits         GOOG's bits entropy coded (context tables)
  baselines.training          the baselines' training, on `training.loop`
  baselines.campaign          the resumable training campaign
  baselines.folders           trained models where training left them
  baselines.files             image files <-> neural-codec files
  baselines.rd                RD points next to JPEG and JPEG 2000
  baselines.scaling           compute-scaling curves
  baselines.ship              shipping campaign models into the package
  baselines.main              ``hbd-train-baseline``
  baselines.__main__          ``python -m tf_hbd.baselines``

  workflows.children          training runs as child processes
  workflows.quickstart        ``hbd-quickstart``
  workflows.reproduce         the whole study at a named scale
  workflows.study_runner      issue 14's seeded study (run records)
"""

__version__ = "0.1.0"
