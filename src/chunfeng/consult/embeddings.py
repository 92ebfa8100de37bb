"""The optional dense stage: a sentence-transformers model loaded from a local path (never from a hub),
used to rerank what BM25 finds. Off unless CHUNFENG_CONSULT_EMBEDDING_MODEL names a model directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from chunfeng.consult.errors import ConsultInvalid

Encoder = Callable[[list[str]], np.ndarray]


@lru_cache(maxsize=2)
def load_encoder(path: str) -> Encoder:
    """Unit-length embeddings from the model at `path`. The hub is switched off first: a missing or broken
    model is an error that names the path, not a download."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if not Path(path, "modules.json").exists() and not Path(path, "config.json").exists():
        raise ConsultInvalid(f"向量模型目录“{path}”不存在或不是 sentence-transformers 模型")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConsultInvalid("未安装 sentence-transformers:pip install 'chunfeng[embeddings]'") from None
    model = SentenceTransformer(path, device="cpu", local_files_only=True)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
                          dtype=np.float32)

    return encode
