"""The built-in routers, registered explicitly (each class says its `name`), in the order `--help` lists them.

Called by the registries on their first read (router.routers.base), so `import router.routers`
imports no router module until a name is read.
"""

from __future__ import annotations

from router.registry import Registry


def add_routers(registry: Registry) -> None:
    """Add every built-in router to `registry` (ROUTERS)."""
    from router.routers.cluster import ClusterRouter
    from router.routers.contrastive import ContrastiveRouter
    from router.routers.factorization import FactorizationRouter
    from router.routers.forest import ForestRouter
    from router.routers.knn import KnnRouter
    from router.routers.linear import LogisticRouter
    from router.routers.mlp import PerceptronRouter
    from router.routers.transformer import MultiLabelRouter, SeparateClassifierRouter

    for cls in (ClusterRouter, ContrastiveRouter, FactorizationRouter, ForestRouter, KnnRouter, LogisticRouter,
                PerceptronRouter, MultiLabelRouter, SeparateClassifierRouter):
        registry.add(cls.name, cls)


def add_saved_forms(registry: Registry) -> None:
    """Add the routers `load_router` rebuilds though nobody trains them by name (SAVED_FORMS)."""
    from router.select import DeployedPick

    registry.add(DeployedPick.name, DeployedPick)
