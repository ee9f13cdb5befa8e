"""Face front end: detection and landmarks (dlib, optional extra ``align``), similarity alignment to a fixed template
at 128x128 (DIMNet) and 64x64 (GAN), and dlib 128-d face descriptors.

``voiceface.face.align`` needs only numpy/scipy/torch; ``detect`` and ``descriptors`` import dlib lazily and raise
``MissingDependencyError`` when it is absent.
"""
from .align import (DIMNET_SIZE, GAN_SIZE, MIRROR_68, TEMPLATE_5, TEMPLATE_68, align_image, alignment_transform,
                    alignment_transform_dlib5, apply_transform, flip_landmarks, from_tensor, points68_to_5,
                    similarity_from_points, template, template68, to_tensor, warp_affine)

__all__ = ["DIMNET_SIZE", "GAN_SIZE", "MIRROR_68", "TEMPLATE_5", "TEMPLATE_68", "align_image", "alignment_transform",
           "alignment_transform_dlib5", "apply_transform", "flip_landmarks", "from_tensor", "points68_to_5",
           "similarity_from_points", "template", "template68", "to_tensor", "warp_affine"]
