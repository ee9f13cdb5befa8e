"""3D face stack: morphable model (Eq. 4.6) and its loaders, the built-in anthropometric model, landmarks,
anthropometric measurements (Table 5.1), eigenface fitting (Eq. 5.7), mesh IO; geometry / rendering live in
``geometry``, ``render`` and ``viz``."""
from .model import MorphableModel, load_model

__all__ = ["MorphableModel", "load_model", "builtin_model"]


def builtin_model(**kwargs) -> MorphableModel:
    """The built-in research stand-in model (see ``voiceface.face3d.builtin``); cached after the first build."""
    from .builtin import builtin_model as _build
    return _build(**kwargs)
