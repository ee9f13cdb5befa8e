"""Face front end: detection and landmarks (dlib, optional extra ``align``), similarity alignment to a fixed template
at 128x128 (DIMNet) and 64x64 (GAN), and dlib 128-d face descriptors.

``voiceface.face.align`` needs only numpy/scipy/torch; ``detect`` and ``descriptors`` import dlib lazily and raise
``MissingDependencyError`` when it is absent.
"""
from .align import (DIMNET_SIZE, GAN_SIZE, TEMPLATE_5, align_image, alignment_transform, apply_transform,
                    points68_to_5, similarity_from_points, template, to_tensor, warp_affine)

__all__ = ["DIMNET_SIZE", "GAN_SIZE", "TEMPLATE_5", "align_image", "alignment_transform", "apply_transform",
           "points68_to_5", "similarity_from_points", "template", "to_tensor", "warp_affine"]
