"""dcgan-complete: semantic image inpainting with a DCGAN (Yeh et al., CVPR 2017).

Modules, one per stage (importing this package does not import TensorFlow):

- ``images``: the image loader and writer, and the [0, 255] <-> [-1, 1] mapping
- ``data``: finding and decoding a training set, the tf.data pipeline
- ``model``: the DCGAN generator and discriminator
- ``train``: the training loop, checkpoints and exported weights
- ``masks``: masks for completion (numpy)
- ``blend``: Poisson blending (scipy)
- ``complete``: latent-space completion
- ``align``: dlib face alignment
"""
__version__ = "0.1.0"
