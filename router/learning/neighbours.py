"""Exact cosine k-nearest neighbours in bounded memory, with scikit-learn's answers.

`CosineIndex` returns the same neighbours as `NearestNeighbors(metric="cosine")` (brute force,
what the kNN router used before), ties included, but several times faster:

- similarities of a block of queries against the index are one dense BLAS product over the few
  frequent columns plus a sparse product over the rare ones (TF-IDF rows share stop words, so a
  plain sparse product is nearly dense and slow);
- the top k+1 of each row are found among the entries at or above a cheap lower bound (the
  (k+1)-th largest maximum of fixed-width column blocks), not by partitioning every row;
- similarities are float32 (half the memory and time); a row whose k-th and (k+1)-th similarities
  are closer than float32 rounding could move them (`tie_tolerance`: a tie, or a difference our
  rounding could flip) is answered by scikit-learn itself, whose tie-breaking is then reproduced.

Memory: one block of `block_rows` x n_index float64 similarities at a time (`working_memory_mb`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DENSE_SHARE = 1 / 16  # columns present in more than this share of index rows go to the dense product
MAX_DENSE_COLUMNS = 256


class CosineIndex:
    """Cosine kNN over the rows of `points` (sparse or dense, n_index x n_features), exact.

    `reference` is the fitted scikit-learn `NearestNeighbors(metric="cosine")` on the same rows:
    it answers the tied rows. `working_memory_mb` bounds the similarity block (MiB).
    """

    def __init__(self, points, reference, working_memory_mb: int = 256):
        from sklearn.preprocessing import normalize

        self.reference = reference
        self.working_memory_mb = working_memory_mb
        self.n_index = points.shape[0]
        points = normalize(points)  # as scikit-learn's cosine does, so the two agree on every untied row
        if sp.issparse(points):
            points = sp.csr_matrix(points)
            counts = np.bincount(points.indices, minlength=points.shape[1])
            by_count = np.argsort(-counts, kind="stable")
            self.dense_columns = by_count[: min(MAX_DENSE_COLUMNS, int((counts > DENSE_SHARE * self.n_index).sum()))]
            rare = np.ones(points.shape[1], dtype=bool)
            rare[self.dense_columns] = False
            self.rare_columns = np.flatnonzero(rare)
            self.dense_t = np.ascontiguousarray(points[:, self.dense_columns].toarray().T, dtype=np.float32)
            self.rare_t = sp.csr_matrix(points[:, self.rare_columns].T)
        else:
            self.dense_columns = None
            self.dense_t = np.ascontiguousarray(np.asarray(points).T, dtype=np.float32)
        # rounding bound of a float32 dot product of unit rows over the dense columns, plus the float32 sum
        # with the rare part, for each of the two similarities compared (Higham: |error| <= n u sum|x y|)
        self.tie_tolerance = 2 * (len(self.dense_t) + 4) * float(np.finfo(np.float32).eps)

    def similarities(self, block) -> np.ndarray:
        """(rows of `block`, n_index) cosine similarities, float32 (within `tie_tolerance` / 2 of exact)."""
        from sklearn.preprocessing import normalize

        block = normalize(block)
        if self.dense_columns is None:
            return np.asarray(block, dtype=np.float32) @ self.dense_t
        block = sp.csr_matrix(block)
        out = block[:, self.dense_columns].toarray().astype(np.float32) @ self.dense_t
        rare = (block[:, self.rare_columns] @ self.rare_t).tocoo()
        out.ravel()[rare.row.astype(np.intp) * self.n_index + rare.col] += rare.data  # unique (row, col) pairs
        return out

    def kneighbors(self, queries, k: int) -> np.ndarray:
        """(n_queries, k) index rows nearest first: the neighbours scikit-learn's brute force gives."""
        n = queries.shape[0]
        if k >= self.n_index:  # every point is a neighbour: only the order is left, scikit-learn gives it
            return self.reference.kneighbors(queries, n_neighbors=k, return_distance=False)
        neighbours = np.empty((n, k), dtype=np.intp)
        block_rows = max(1, (self.working_memory_mb << 20) // (4 * 2 * self.n_index))  # similarities and mask
        for start in range(0, n, block_rows):
            block = queries[start:start + block_rows]
            top, tied = self._top(self.similarities(block), k)
            neighbours[start:start + len(top)] = top
            if tied.size:
                neighbours[start + tied] = self.reference.kneighbors(block[tied], n_neighbors=k, return_distance=False)
        return neighbours

    def _top(self, similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar columns per row (most similar first) and the rows tied at the k-th place."""
        rows, n = similarity.shape
        width = int(np.clip(n // (8 * (k + 1)), 1, 64))
        blocks = n // width
        block_max = similarity[:, : blocks * width].reshape(rows, blocks, width).max(axis=2)  # a view, no copy
        if blocks * width < n:
            block_max = np.column_stack([block_max, similarity[:, blocks * width:].max(axis=1)])
            blocks += 1
        # at least k+1 entries are >= the (k+1)-th largest block maximum, so the top k+1 all pass this bound
        bound = np.partition(block_max, blocks - (k + 1), axis=1)[:, blocks - (k + 1)]
        row, column = np.nonzero(similarity >= bound[:, None])
        value = similarity[row, column]
        order = np.lexsort((column, -value, row))
        row, column, value = row[order], column[order], value[order]
        first = np.searchsorted(row, np.arange(rows))
        take = first[:, None] + np.arange(k + 1)
        top_values = value[take]
        tied = np.flatnonzero(top_values[:, k - 1].astype(np.float64) - top_values[:, k] <= self.tie_tolerance)
        return column[take[:, :k]], tied
