"""The exported encoder's model run by torch in fp32 or bf16 (indexing): its tokenizer and pooling, no
sentence-transformers import."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx_encoder import ExportedEncoder, _cores

PRECISIONS = ("fp32", "bf16")


class TorchEncoder(ExportedEncoder):
    """The transformer of an exported encoder loaded by transformers' AutoModel, pooled as the export pools."""

    def __init__(self, folder: Path, batch_size: int = 32, precision: str = "fp32", threads: int | None = None) -> None:
        """Load the model the folder was exported from (`encoder.json` "transformer"), offline, in `precision`."""
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        super().__init__(folder, batch_size)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        torch.set_num_threads(threads or _cores())
        self.torch = torch
        self.precision = precision
        self.pooling = self.info.get("pooling", "mean")
        net = AutoModel.from_pretrained(self.info["transformer"], local_files_only=True)
        self.net = (net.to(torch.bfloat16) if precision == "bf16" else net).eval()

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Unit vectors for one padded batch, by torch (pooled in fp32)."""
        torch = self.torch
        feed = {name: torch.from_numpy(a) for name, a in arrays.items()}
        with torch.inference_mode():
            hidden = self.net(**feed).last_hidden_state.float()
            if self.pooling == "cls":
                v = hidden[:, 0]
            else:
                mask = feed["attention_mask"].unsqueeze(-1).float()
                v = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, dim=-1).numpy()
