"""Fitted scikit-learn parts as plain numpy arrays and back: how saved routers hold them without pickle.

Each `*_arrays` function returns {key: ndarray} (numbers, strings or a structured record
array: nothing `np.load(allow_pickle=False)` refuses); each `*_from_arrays` rebuilds an
estimator that predicts exactly as the original, from those arrays and its hyper-parameters.
Only the estimators the routers use are covered: an unknown kind is never rebuilt.
"""

from __future__ import annotations

import numpy as np

Arrays = dict[str, np.ndarray]


def prefixed(prefix: str, arrays: Arrays) -> Arrays:
    """The same arrays under `prefix.` keys (to keep several parts apart in one file)."""
    return {f"{prefix}.{key}": value for key, value in arrays.items()}


def unprefixed(prefix: str, arrays: Arrays) -> Arrays:
    """The arrays under `prefix.`, with the prefix taken off."""
    start = f"{prefix}."
    return {key[len(start):]: value for key, value in arrays.items() if key.startswith(start)}


def matrix_arrays(x) -> Arrays:
    """A dense array or a scipy sparse matrix (stored as CSR parts)."""
    import scipy.sparse  # here, not at import: the CLI's start-up stays light

    if scipy.sparse.issparse(x):
        x = scipy.sparse.csr_matrix(x)
        return {"data": x.data, "indices": x.indices, "indptr": x.indptr, "shape": np.asarray(x.shape)}
    return {"dense": np.asarray(x)}


def matrix_from_arrays(arrays: Arrays):
    import scipy.sparse

    if "dense" in arrays:
        return arrays["dense"]
    matrix = scipy.sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"]))
    matrix.check_format(full_check=True)  # indices in range: compiled code reads them unchecked
    return matrix


def logistic_arrays(classifier) -> Arrays:
    """A binary LogisticRegression (or a StandardScaler -> LogisticRegression pipeline)."""
    steps = classifier.steps if hasattr(classifier, "steps") else [(None, classifier)]
    arrays = {"coef": steps[-1][1].coef_, "intercept": steps[-1][1].intercept_, "classes": steps[-1][1].classes_}
    if len(steps) == 2:
        arrays.update(scaler_mean=steps[0][1].mean_, scaler_scale=steps[0][1].scale_, scaler_var=steps[0][1].var_)
    return arrays


def logistic_from_arrays(arrays: Arrays, make_classifier):
    """`make_classifier()` (unfitted, as at fit time) given the saved coefficients (and scaler statistics)."""
    classifier = make_classifier()
    steps = [step for _, step in classifier.steps] if hasattr(classifier, "steps") else [classifier]
    logistic = steps[-1]
    logistic.coef_, logistic.intercept_, logistic.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
    logistic.n_features_in_ = arrays["coef"].shape[1]
    if len(steps) == 2:
        scaler = steps[0]
        scaler.mean_, scaler.scale_, scaler.var_ = arrays["scaler_mean"], arrays["scaler_scale"], arrays["scaler_var"]
        scaler.n_features_in_ = scaler.mean_.shape[0]
        scaler.n_samples_seen_ = 0
    return classifier


def linear_arrays(regression) -> Arrays:
    """A fitted LinearRegression or Ridge (one or several outputs)."""
    return {"coef": np.asarray(regression.coef_), "intercept": np.asarray(regression.intercept_)}


def linear_from_arrays(arrays: Arrays, regression):
    """`regression` (unfitted, as at fit time) predicting X @ coef.T + intercept with the saved arrays."""
    regression.coef_, regression.intercept_ = arrays["coef"], arrays["intercept"]
    regression.n_features_in_ = arrays["coef"].shape[-1]
    return regression


def forest_arrays(forest) -> Arrays:
    """A fitted RandomForestClassifier: every tree's node records and leaf values, and the classes per output."""
    classes = forest.classes_ if forest.n_outputs_ > 1 else [forest.classes_]
    arrays = {"n_features": np.asarray(forest.n_features_in_), "n_trees": np.asarray(len(forest.estimators_))}
    arrays.update({f"classes{k}": np.asarray(c) for k, c in enumerate(classes)})
    for t, estimator in enumerate(forest.estimators_):
        state = estimator.tree_.__getstate__()
        arrays.update({f"tree{t}.nodes": state["nodes"], f"tree{t}.values": state["values"],
                       f"tree{t}.max_depth": np.asarray(state["max_depth"])})
    return arrays


def forest_from_arrays(arrays: Arrays, forest):
    """`forest` (an unfitted RandomForestClassifier with the fit-time parameters) holding the saved trees."""
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.tree._tree import NODE_DTYPE, Tree

    n_features = int(arrays["n_features"])
    classes = [arrays[f"classes{k}"] for k in range(sum(key.startswith("classes") for key in arrays))]
    n_classes = np.asarray([len(c) for c in classes], dtype=np.intp)
    estimators = []
    for t in range(int(arrays["n_trees"])):
        nodes = arrays[f"tree{t}.nodes"]
        _check_tree(t, nodes, arrays[f"tree{t}.values"], n_features, len(classes), n_classes, NODE_DTYPE)
        tree = Tree(n_features, n_classes, len(classes))
        tree.__setstate__({"max_depth": int(arrays[f"tree{t}.max_depth"]), "node_count": len(nodes),
                           "nodes": nodes, "values": arrays[f"tree{t}.values"]})
        estimator = DecisionTreeClassifier(**{name: getattr(forest, name) for name in forest.estimator_params})
        estimator.tree_, estimator.n_outputs_, estimator.n_features_in_ = tree, len(classes), n_features
        estimator.classes_ = classes if len(classes) > 1 else classes[0]
        estimator.n_classes_ = list(n_classes) if len(classes) > 1 else int(n_classes[0])
        estimator.max_features_ = n_features
        estimators.append(estimator)
    forest.estimators_, forest.n_outputs_, forest.n_features_in_ = estimators, len(classes), n_features
    forest.classes_ = classes if len(classes) > 1 else classes[0]
    forest.n_classes_ = list(n_classes) if len(classes) > 1 else int(n_classes[0])
    forest.estimator_ = DecisionTreeClassifier()
    return forest


def _check_tree(t: int, nodes: np.ndarray, values: np.ndarray, n_features: int, n_outputs: int, n_classes: np.ndarray,
                node_dtype) -> None:
    """Refuse node records that could send sklearn's compiled tree walk out of bounds or into a loop."""
    if nodes.dtype != node_dtype or nodes.ndim != 1 or len(nodes) == 0:
        raise ValueError(f"tree {t}: node records of another layout ({nodes.dtype}, shape {nodes.shape})")
    index = np.arange(len(nodes))
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    leaf = left == -1
    inner_ok = (left > index) & (right > index) & (left < len(nodes)) & (right < len(nodes))  # children after parents
    inner_ok &= (feature >= 0) & (feature < n_features)
    if not np.all(np.where(leaf, right == -1, inner_ok)):
        raise ValueError(f"tree {t}: a node points outside the tree, backwards, or at a feature it does not have")
    if values.shape != (len(nodes), n_outputs, int(n_classes.max())) or values.dtype != np.float64:
        raise ValueError(f"tree {t}: leaf values of shape {values.shape}, expected ({len(nodes)}, {n_outputs}, {n_classes.max()})")


def kmeans_arrays(kmeans) -> Arrays:
    return {"centers": kmeans.cluster_centers_}


def kmeans_from_arrays(arrays: Arrays, kmeans):
    """`kmeans` (an unfitted KMeans) predicting the nearest of the saved centres."""
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    kmeans.cluster_centers_ = arrays["centers"]
    kmeans.n_features_in_ = kmeans.cluster_centers_.shape[1]
    kmeans.labels_ = np.zeros(0, dtype=np.int32)
    kmeans._n_threads = _openmp_effective_n_threads()
    return kmeans


def svd_arrays(svd) -> Arrays:
    return {"components": svd.components_}


def svd_from_arrays(arrays: Arrays, svd):
    svd.components_ = arrays["components"]
    svd.n_features_in_ = svd.components_.shape[1]
    return svd
