"""Exact cosine k-nearest neighbours in bounded memory, with scikit-learn's answers.

`CosineIndex` returns the same neighbours as `NearestNeighbors(metric="cosine")` (brute force,
what the kNN router used before), ties included, but several times faster:

- similarities of a block of queries against the index are one dense BLAS product over the few
  frequent columns, plus a sparse product over the rare ones (TF-IDF rows share stop words, so a
  plain sparse product is nearly dense and slow), plus, for the columns in between (`MEDIUM_SHARE`),
  each query's few entries times the index's dense rows of those columns; written into one buffer
  reused across blocks, with one BLAS thread (a second one costs more CPU than it saves on a busy
  machine);
- the top k+1 of each row are found among the entries at or above a cheap lower bound (the
  (k+1)-th largest maximum of disjoint column groups), by one flat search of the block and one
  sort of 64-bit keys (row, similarity, column);
- queries that hold the same few frequent columns are put side by side (`_grouped_order`) and each group of
  `GROUP_ROWS` of them takes the dense product over the columns it holds only (adding exact zeros changes
  no sum), where that saves at least a third of the product's work: queries of a few kinds (templates,
  subjects, tasks) hold few of the frequent columns each;
- similarities are float32 (half the memory and time); a row whose k-th and (k+1)-th similarities
  are closer than float32 rounding could move them (`tie_tolerance`) is settled from float64
  similarities of its few candidates; only a true tie (float64 values within EXACT_TIE) is
  answered by scikit-learn itself (one call for all of them), whose tie-breaking is then reproduced.

Memory: one block of `block_rows` x n_index float32 similarities at a time (`working_memory_mb`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DENSE_SHARE = 1 / 16  # columns present in more than this share of index rows go to the dense product
MAX_DENSE_COLUMNS = 256
MEDIUM_SHARE = 1 / 32  # other columns present in more than this share go to the medium part (dense index rows)
MEDIUM_BYTES = 64 << 20  # at most this much of them (the most frequent first)
GROUP_ROWS = 128  # queries whose dense product runs over the columns they hold
GROUPED_WORK = 2 / 3  # grouped products are used when their work is at most this share of the whole product's
EXACT_TIE = 1e-9  # float64 similarities closer than this are a tie: scikit-learn breaks it (its rounding is ~1e-15)


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
        self.points = points  # un-normalised, as given: float64 rows for the near-tied candidates
        points = normalize(points)  # as scikit-learn's cosine does, so the two agree on every untied row
        if sp.issparse(points):
            points = sp.csr_matrix(points)
            counts = np.bincount(points.indices, minlength=points.shape[1])
            by_count = np.argsort(-counts, kind="stable")
            self.dense_columns = by_count[: min(MAX_DENSE_COLUMNS, int((counts > DENSE_SHARE * self.n_index).sum()))]
            medium = by_count[len(self.dense_columns):][: max(0, MEDIUM_BYTES // (4 * self.n_index))]
            self.medium_columns = medium[counts[medium] > MEDIUM_SHARE * self.n_index]
            rare = np.ones(points.shape[1], dtype=bool)
            rare[self.dense_columns] = rare[self.medium_columns] = False
            self.rare_columns = np.flatnonzero(rare)
            self.dense_t = np.ascontiguousarray(points[:, self.dense_columns].toarray().T, dtype=np.float32)
            self.medium_t = np.ascontiguousarray(points[:, self.medium_columns].toarray().T, dtype=np.float32)
            self.rare_t = sp.csr_matrix(points[:, self.rare_columns].T)
        else:
            self.dense_columns = None
            self.dense_t = np.ascontiguousarray(np.asarray(points).T, dtype=np.float32)
            self.medium_t = np.empty((0, self.n_index), dtype=np.float32)
        # rounding bound of a float32 sum of the products of unit rows over the dense and medium columns, plus the
        # rounded rare part, for each of the two similarities compared (Higham: |error| <= n u sum|x y|)
        self.tie_tolerance = 2 * (len(self.dense_t) + len(self.medium_t) + 4) * float(np.finfo(np.float32).eps)

    def _split(self, queries):
        """The unit-length query rows, split as the index is: (dense columns, medium columns, both float32, rare
        columns); dense features: (float32 rows, None, None). Once per call: column selection costs more than a
        block's product."""
        from sklearn.preprocessing import normalize

        queries = normalize(queries)
        if self.dense_columns is None:
            return np.asarray(queries, dtype=np.float32), None, None
        queries = sp.csr_matrix(queries)
        return (sp.csr_matrix(queries[:, self.dense_columns], dtype=np.float32),
                sp.csr_matrix(queries[:, self.medium_columns], dtype=np.float32), queries[:, self.rare_columns])

    def _grouped_order(self, dense) -> np.ndarray | None:
        """An order of the queries (`_split`'s dense part) under which groups of GROUP_ROWS neighbours hold few dense
        columns between them, or None where grouping would not save GROUPED_WORK of the dense product.

        Two orders are tried and the one with less work kept: queries sorted by the columns they hold, the least
        frequent first (queries of one template share their words), and by where their columns lie on the
        co-occurrence graph's second eigenvector (a spectral ordering: topics whose words vary)."""
        if dense.shape[0] <= GROUP_ROWS or len(self.dense_columns) < 2:
            return None
        held = np.zeros(dense.shape, dtype=bool)
        held[np.repeat(np.arange(dense.shape[0]), np.diff(dense.indptr)), dense.indices] = True
        keys = np.packbits(held[:, ::-1], axis=1)  # dense_columns run from the most frequent
        by_columns = np.lexsort(keys.T[::-1])
        ones = held.astype(np.float32)
        together = ones.T @ ones  # (columns, columns) queries holding both
        scale = 1 / np.sqrt(np.maximum(together.diagonal(), 1))
        coordinate = np.linalg.eigh(scale[:, None] * together * scale)[1][:, -2] * scale
        by_graph = np.argsort((ones @ coordinate) / np.maximum(held.sum(axis=1), 1), kind="stable")
        starts = np.arange(0, dense.shape[0], GROUP_ROWS)
        sizes = np.diff(np.append(starts, dense.shape[0]))

        def work(order: np.ndarray) -> float:  # the grouped products' share of the whole product's multiplications
            return (np.logical_or.reduceat(held[order], starts, axis=0).sum(axis=1) * sizes).sum() / held.size

        best = min((by_columns, by_graph), key=work)
        return best if work(best) <= GROUPED_WORK else None

    def _similarities(self, split, out: np.ndarray | None = None, columns_of: np.ndarray | None = None) -> np.ndarray:
        """(rows of the split block, n_index) cosine similarities, float32 (within `tie_tolerance` / 2 of exact).

        `split`: `_split`'s parts of a block of queries; `out`: a C-contiguous float32 buffer with at least that many
        rows to write them into (reused across blocks: fresh pages cost more than the product); `columns_of`: given
        (a buffer shaped as `dense_t`), each GROUP_ROWS rows take the dense product over the columns they hold (the
        rows put in `_grouped_order`)."""
        from scipy.linalg.blas import sgemm

        dense, medium, rare_part = split
        if rare_part is None:
            return dense @ self.dense_t
        out = np.empty((dense.shape[0], self.n_index), dtype=np.float32) if out is None else out[: dense.shape[0]]
        rare = sp.csr_matrix(rare_part @ self.rare_t)
        rare.data = rare.data.astype(np.float32)  # rounded once: within the tolerance's margin
        rare.toarray(out=out)
        if medium.nnz:
            add_sparse_times_dense(medium, self.medium_t, out)
        if not len(self.dense_columns):
            return out
        dense = dense.toarray()
        if columns_of is None:
            # out += dense @ dense_t in place: BLAS sees the transposes (column-major views, no copy), beta=1 adds
            return sgemm(1.0, self.dense_t.T, dense.T, beta=1.0, c=out.T, overwrite_c=True).T
        for start in range(0, len(dense), GROUP_ROWS):
            rows = slice(start, start + GROUP_ROWS)
            held = np.flatnonzero(dense[rows].any(axis=0))
            if len(held) == len(self.dense_columns):
                sgemm(1.0, self.dense_t.T, dense[rows].T, beta=1.0, c=out[rows].T, overwrite_c=True)
            elif len(held):  # the columns no row of the group holds add exact zeros: left out
                index_part = np.take(self.dense_t, held, axis=0, out=columns_of[: len(held)])
                sgemm(1.0, index_part.T, dense[rows][:, held].T, beta=1.0, c=out[rows].T, overwrite_c=True)
        return out

    def kneighbors(self, queries, k: int) -> np.ndarray:
        """(n_queries, k) index rows nearest first: the neighbours scikit-learn's brute force gives."""
        from threadpoolctl import threadpool_limits

        n = queries.shape[0]
        if k >= self.n_index:  # every point is a neighbour: only the order is left, scikit-learn gives it
            return self.reference.kneighbors(queries, n_neighbors=k, return_distance=False)
        neighbours = np.empty((n, k), dtype=np.intp)
        block_rows = max(1, (self.working_memory_mb << 20) // (4 * 2 * self.n_index))  # similarities and mask
        dense, medium, rare = self._split(queries)
        order = None if rare is None or block_rows < GROUP_ROWS else self._grouped_order(dense)
        columns_of = None
        if order is not None:  # answered in that order, put back below
            queries, dense, medium, rare = sp.csr_matrix(queries)[order], dense[order], medium[order], rare[order]
            block_rows -= block_rows % GROUP_ROWS  # blocks of whole groups
            columns_of = np.empty_like(self.dense_t)  # every group's columns of the index, in turn
        buffer = np.empty((min(n, block_rows), self.n_index), dtype=np.float32) if self.dense_columns is not None else None
        true_ties = []
        with threadpool_limits(1, user_api="blas"):  # one core's product per block: a second BLAS thread costs more CPU
            self._blocks(queries, (dense, medium, rare), k, block_rows, buffer, neighbours, true_ties, columns_of)
        tied = np.concatenate(true_ties) if true_ties else np.empty(0, dtype=np.intp)
        if tied.size:  # one call: each call of scikit-learn's transposes the whole index
            neighbours[tied] = self.reference.kneighbors(queries[tied], n_neighbors=k, return_distance=False)
        if order is None:
            return neighbours
        in_order = np.empty_like(neighbours)
        in_order[order] = neighbours
        return in_order

    def _blocks(self, queries, split, k: int, block_rows: int, buffer, neighbours: np.ndarray, true_ties: list,
                columns_of: np.ndarray | None) -> None:
        """kneighbors' blocks: each row's k nearest written into `neighbours`; rows truly tied appended to `true_ties`."""
        n = queries.shape[0]
        for start in range(0, n, block_rows):
            rows = slice(start, start + block_rows)
            similarity = self._similarities(tuple(None if part is None else part[rows] for part in split), buffer,
                                            columns_of)
            top, tied = self._top(similarity, k)
            neighbours[rows] = top
            if tied.size:
                resolved, found, tied = self._resolve(queries[rows], similarity, top, tied, k)
                neighbours[start + resolved] = found
                true_ties.append(start + tied)

    def _top(self, similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar columns per row (most similar first, lower column first among equals) and the rows
        tied at the k-th place within float32 rounding (`tie_tolerance`)."""
        rows, n = similarity.shape
        width = int(np.clip(n // (8 * (k + 1)), 1, 64))
        groups = n // width
        # group g holds columns g, g + groups, g + 2 groups ...: the maximum over the middle axis of this view is an
        # elementwise maximum of contiguous rows (vectorised), twice as fast as the maximum of contiguous blocks
        maxima = similarity[:, : width * groups].reshape(rows, width, groups).max(axis=1)
        if width * groups < n:
            maxima = np.column_stack([maxima, similarity[:, width * groups:].max(axis=1)])
        # the groups are disjoint, so at least k+1 entries are >= the (k+1)-th largest group maximum: the top k+1
        # all pass this bound; the flat search of the whole block is a fraction of a two-dimensional one
        bound = np.partition(maxima, maxima.shape[1] - (k + 1), axis=1)[:, maxima.shape[1] - (k + 1)]
        flat = np.flatnonzero(similarity >= bound[:, None])
        value = similarity.ravel()[flat] + np.float32(0)  # -0.0 becomes 0.0: equal values get equal keys
        # one sort of 64-bit keys (row, then similarity descending, then column) instead of a three-key lexsort; a
        # block is at most 2**32 entries (16 GiB of float32), so its row and column bits fit beside the 32 of a value
        column_bits = max(1, int(n - 1).bit_length())
        bits = value.view(np.uint32).astype(np.uint64)
        ascending = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)  # float order as unsigned order
        row, column = np.divmod(flat, n)
        keys = (row.astype(np.uint64) << (32 + column_bits)) | ((ascending ^ 0xFFFFFFFF) << column_bits) | column.astype(np.uint64)
        keys.sort()
        row = (keys >> (32 + column_bits)).astype(np.intp)
        column = (keys & ((1 << column_bits) - 1)).astype(np.intp)
        first = np.searchsorted(row, np.arange(rows))
        take = first[:, None] + np.arange(k + 1)
        top_values = similarity[np.arange(rows)[:, None], column[take]]
        tied = np.flatnonzero(top_values[:, k - 1].astype(np.float64) - top_values[:, k] <= self.tie_tolerance)
        return column[take[:, :k]], tied

    def _resolve(self, block, similarity: np.ndarray, top: np.ndarray, tied: np.ndarray, k: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Settle rows `tied` within float32 rounding from float64 similarities of their few candidates.

        Candidates: every column within `tie_tolerance` of the row's float32 k-th similarity (the exact top k are
        among them). Where the float64 k-th and (k+1)-th candidates differ by more than EXACT_TIE, that is
        scikit-learn's answer too. Returns (rows settled, their (rows, k) neighbours, rows still tied: true ties).
        """
        kth = similarity[tied, top[tied, k - 1]].astype(np.float64)
        row, column = np.divmod(np.flatnonzero(similarity[tied] >= (kth - self.tie_tolerance)[:, None]), similarity.shape[1])
        exact = self._exact_similarities(block[tied[row]], column)
        order = np.lexsort((column, -exact, row))
        column, exact = column[order], exact[order]
        counts = np.bincount(row, minlength=len(tied))
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        after = np.where(counts > k, first + k, first + k - 1)  # the (k+1)-th candidate, if any
        settled = (counts == k) | (exact[first + k - 1] - exact[after] > EXACT_TIE)
        found = column[first[settled, None] + np.arange(k)]
        return tied[settled], found, tied[~settled]

    def _exact_similarities(self, queries, columns: np.ndarray) -> np.ndarray:
        """float64 cosine similarity of each query row with index row `columns[i]` (pairs, not all against all)."""
        from sklearn.preprocessing import normalize

        points = normalize(self.points[columns])
        if sp.issparse(points):
            return np.asarray(sp.csr_matrix(normalize(queries)).multiply(points).sum(axis=1)).ravel()
        return np.einsum("ij,ij->i", normalize(np.asarray(queries, dtype=np.float64)), points)


def add_sparse_times_dense(left, right: np.ndarray, out: np.ndarray) -> None:
    """out += left @ right in place: `left` CSR float32 (n, m), `right` C-contiguous float32 (m, width), `out`
    C-contiguous float32 (n, width). scipy's own kernel for sparse times dense, which adds into its output; where
    a scipy lacks it, the product is made apart and added."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:  # a private name: kept behind this fallback
        csr_matvecs = None
    if csr_matvecs is None or not (out.flags.c_contiguous and right.flags.c_contiguous
                                   and left.dtype == right.dtype == out.dtype == np.float32):
        out += left @ right  # (its own output: views it could not write through are not taken)
        return
    csr_matvecs(left.shape[0], left.shape[1], right.shape[1], left.indptr, left.indices, left.data, right.ravel(),
                out.ravel())
