"""The FAISS vector index: exact inner product up to `index.exact_max_passages` passages, HNSW graph above."""

from __future__ import annotations

from typing import Any

import numpy as np

EF_CONSTRUCTION = 200  # candidates kept while linking each new vector: a better graph for a slower build


def build_vector_index(
    vectors: np.ndarray, ids: np.ndarray, exact_max: int, neighbors: int, base: Any = None, new: int = 0
) -> Any:
    """An id-mapped FAISS index over unit vectors, exact or HNSW by count.

    `base`: the previous generation's index when this one only adds passages, the last `new` rows; they are
    added to a copy of it instead of building everything again (an HNSW graph of a million takes minutes).
    """
    import faiss

    dim = vectors.shape[1]
    want_exact = len(ids) <= exact_max
    if base is not None and new < len(ids) and is_exact(base) == want_exact and base.ntotal == len(ids) - new:
        index = faiss.clone_index(base)
        if new:
            index.add_with_ids(vectors[len(ids) - new :], ids[len(ids) - new :])
        return index
    if want_exact:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        graph = faiss.IndexHNSWFlat(dim, neighbors, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = EF_CONSTRUCTION
        index = faiss.IndexIDMap2(graph)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def is_exact(index: Any) -> bool:
    """Whether an id-mapped index searches exactly (flat) rather than by graph."""
    import faiss

    return isinstance(faiss.downcast_index(index.index), faiss.IndexFlat)


def flat_matrix(index: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The vectors of an exact index as a numpy matrix (a view, no copy) and their ids; None for a graph.

    One question against them is a matrix-vector product, about twice as fast here as faiss's own search."""
    import faiss

    inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexFlat) or index.ntotal == 0:
        return None
    matrix = faiss.rev_swig_ptr(inner.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
    return matrix, faiss.vector_to_array(index.id_map)


def half_copy(matrix: np.ndarray) -> Any:
    """The rows of a matrix of unit vectors as a flat FAISS index of 16-bit floats, in the same order.

    A question scans half the memory; `HALF_ERROR` bounds how far its inner products are from the exact ones."""
    import faiss

    index = faiss.IndexScalarQuantizer(matrix.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index.add(matrix)
    return index


# |16-bit - 32-bit inner product| of unit vectors: each component rounded by at most 2^-11 of itself, so at most
# 2^-11 (Cauchy-Schwarz) plus the 32-bit sums' own rounding; 1e-3 leaves room to spare.
HALF_ERROR = 1e-3


def dot_rows(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Inner product of each row with the query, computed without BLAS.

    numpy's BLAS splits a product this size over its threads, which then spin for a while after it and take the
    cores from the next question's embedding (measured here: a question's embedding 2-4 ms slower after one)."""
    return np.einsum("ij,j->i", rows, query)


def scan(index: Any, query: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The k best inner products of one query in a FAISS index and their ids (or rows), on this thread alone.

    For one query FAISS would still wake its whole OpenMP team, whose threads then spin and take the cores the
    rest of a search needs; the thread count is this thread's own and is put back after."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(query.reshape(1, -1), k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    return scores[0], ids[0]


def kind(index: Any) -> str:
    """'flat' or 'hnsw<M>', as the manifest records it."""
    import faiss

    inner = faiss.downcast_index(index.index)
    return "flat" if isinstance(inner, faiss.IndexFlat) else f"hnsw{inner.hnsw.nb_neighbors(1)}"


def search_params(index: Any, selector: Any, ef_search: int) -> Any:
    """Search parameters: the id filter, and for a graph how many nodes to visit (recall against speed)."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    if isinstance(inner, faiss.IndexFlat):
        return faiss.SearchParameters(sel=selector) if selector is not None else None
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef_search
    if selector is not None:
        params.sel = selector
    return params
