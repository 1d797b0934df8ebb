"""dcgan-complete: semantic image inpainting with a DCGAN (Yeh et al., CVPR 2017).

Modules, one per stage (importing this package does not import TensorFlow).

The library, from the bottom up:

- ``options``: every option's default and check, one dataclass per stage
- ``errors``: the errors the command line shows in one line; how signals stop a run
- ``files``: the one atomic file writer; output folders checked before the work
- ``images``: the image loader and writer, the [0, 255] <-> [-1, 1] mapping, a run's crops
- ``masks``: masks for completion, and the one reader of mask files (numpy)
- ``blend``: Poisson blending (scipy)
- ``classical``: the classical fills (Telea, Navier-Stokes, biharmonic, mean)
- ``metrics``: PSNR, SSIM, dlib's face check and identity distance
- ``variants``: the spread of several fills of one hole, and its picture (numpy)
- ``align``: dlib face detection, landmarks and alignment, also of faces damaged by a hole
- ``data``: finding and decoding a training set, the tf.data pipeline
- ``model``: the DCGAN generator and discriminator (and the encoder's network)
- ``frozen``: the networks frozen for the search (batch norm folded, weights pre-cast)
- ``distribute``: several devices or machines (tf.distribute)
- ``train``: the training loop, checkpoints and exported weights
- ``encoder``: training the encoder that gives the search its starting point
- ``search``: the latent-space search (TensorFlow), the model to search with
- ``outputs``: every output's name, and the writers of a completion run's files
- ``photo``: faces repaired inside whole photos, at the photo's own size
- ``damage``: synthetic damage (cracks, scratches, stains, stamps) over clean photos
- ``detector``: the damage detector (a small segmentation network): training, finding damage
- ``page``: what the web page does with a request (uploads, live searches, results), without
  Gradio

The commands, which import the library and never each other (``cli`` calls them):

- ``cli``: the command line; it only parses options
- ``complete``: ``dcgan-complete complete``
- ``detect``: ``dcgan-complete detect``: the damage found, written as masks
- ``evaluate``, ``sweep``: scores against the baselines, and time to quality
- ``demo``: the demo on the bundled model
- ``app``: the web page (``dcgan-complete serve``)
"""
__version__ = "0.1.0"
