"""Load weights from a local file (this package never downloads anything)."""
from __future__ import annotations

import os
from typing import Mapping, Optional, Union

import torch
from torch import nn

__all__ = ["load_weights", "resolve_weights"]

PathLike = Union[str, "os.PathLike[str]"]


def _unwrap(obj: object) -> Mapping[str, torch.Tensor]:
    """Accept a bare state_dict, ``{"state_dict": ...}``/``{"model": ...}`` checkpoints,
    or a pickled ``nn.Module``; strip a DataParallel ``module.`` prefix."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state_dict (mapping of tensors), got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_weights(model: nn.Module, path: PathLike, strict: bool = True,
                 map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Load a local checkpoint into ``model`` (in place) and return it.

    The file may hold a state_dict (ours or torchvision's: V2/V3 names match), a
    checkpoint dict with a ``state_dict``/``model`` entry, or a whole pickled model
    (the last needs ``weights_only=False`` and is only tried if the safe load fails).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r} (no downloads: pass a local file)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # a pickled nn.Module
        obj = torch.load(path, map_location=map_location, weights_only=False)
    model.load_state_dict(_unwrap(obj), strict=strict)
    return model


def resolve_weights(model: nn.Module, weights: Optional[PathLike], pretrained: bool) -> nn.Module:
    """Shared ``weights=`` / ``pretrained=`` handling of the model builders."""
    if pretrained:
        raise ValueError("pretrained=True: this package never downloads weights; "
                         "pass weights='path/to/state_dict.pth' (e.g. a torchvision checkpoint)")
    if weights is not None:
        load_weights(model, weights)
    return model
