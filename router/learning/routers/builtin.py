"""The built-in routers, registered explicitly (each class says its `name`), in the order `--help` lists them.

Called by the registries on their first read (lm_routing.learning.routers.base), so `import lm_routing.learning.routers`
imports no router module until a name is read.
"""

from __future__ import annotations

from lm_routing.registry import Registry


def add_routers(registry: Registry) -> None:
    """Add every built-in router to `registry` (ROUTERS)."""
    from lm_routing.learning.routers.cluster import ClusterRouter
    from lm_routing.learning.routers.contrastive import ContrastiveRouter
    from lm_routing.learning.routers.factorization import FactorizationRouter
    from lm_routing.learning.routers.forest import ForestRouter
    from lm_routing.learning.routers.knn import KnnRouter
    from lm_routing.learning.routers.linear import LogisticRouter
    from lm_routing.learning.routers.mlp import PerceptronRouter
    from lm_routing.learning.routers.transformer import MultiLabelRouter, SeparateClassifierRouter

    for cls in (ClusterRouter, ContrastiveRouter, FactorizationRouter, ForestRouter, KnnRouter, LogisticRouter,
                PerceptronRouter, MultiLabelRouter, SeparateClassifierRouter):
        registry.add(cls.name, cls)

