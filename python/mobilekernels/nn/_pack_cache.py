"""Keys for the derived weight packs the modules cache (rebuilt when a weight changes)."""
from __future__ import annotations

from typing import Optional

import torch


def tensor_key(t: Optional[torch.Tensor]):
    """(storage pointer, version) of a parameter; inference tensors (made under
    ``torch.inference_mode``) have no version counter, so only their pointer counts."""
    if t is None:
        return None
    return (t.data_ptr(), 0 if t.is_inference() else t._version)
