"""dcgan-complete: semantic image inpainting with a DCGAN (Yeh et al., CVPR 2017).

Modules, one per stage (importing this package does not import TensorFlow):

- ``options``: every option's default and check, one dataclass per stage
- ``errors``: the errors the command line shows in one line; how signals stop a run
- ``files``: the one atomic file writer; output folders checked before the work
- ``images``: the image loader and writer, and the [0, 255] <-> [-1, 1] mapping
- ``data``: finding and decoding a training set, the tf.data pipeline
- ``model``: the DCGAN generator and discriminator
- ``train``: the training loop, checkpoints and exported weights
- ``masks``: masks for completion (numpy)
- ``blend``: Poisson blending (scipy)
- ``search``: the latent-space search (TensorFlow)
- ``complete``: completion of image files: inputs, masks, output names, outputs
- ``evaluate``, ``metrics``, ``demo``: scores against baselines, and the demo
- ``align``: dlib face alignment
"""
__version__ = "0.1.0"
