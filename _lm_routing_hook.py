"""Start-up hook that lets a plain `lm_eval` see lm-routing's tasks and `--model routed`.

lm-eval 0.4.x discovers tasks only in its own folder and in `include_path`, and
models only in its own registry; it has no plugin entry points. `lm_routing.pth`
imports this module at interpreter start. It costs one tiny import: it installs
a meta-path finder and returns. When `lm_eval.tasks.manager` is imported, the
finder wraps `TaskManager.__init__` so our task folder joins `include_path`;
when `lm_eval.models` is imported (lm-eval's lazy model table, loaded before any
model is looked up), it adds `routed` to the model registry as a lazy
placeholder, so nothing of ours is imported unless that model is asked for.

Failure rule: if lm-routing is broken or half-uninstalled, lm_eval must behave
exactly as if this hook did not exist, so every step here swallows its errors.

First, and only in a `routing-eval` process: Ctrl-C from here until `lm_routing.cli.main.main`
takes SIGINT back (the rest of site, the console script importing `cli`) ends the
run with one line instead of CPython's "Fatal Python error: init_import_site" or a
KeyboardInterrupt traceback. Builtins only (`_signal`, `sys`; `os` is loaded by then),
so it is armed within microseconds of this file starting to run. Other programs
(lm_eval, pytest) keep Python's own SIGINT handling.
"""

import sys

import _signal


def interrupted_while_starting(signum, frame):
    """SIGINT before routing-eval's own handling runs: one line, exit 128 + signum, nothing written."""
    import os

    os.write(2, b"routing-eval: interrupted while starting; nothing was written\n")
    os._exit(128 + signum)


def arm_start_up_interrupt():
    """In a routing-eval process whose SIGINT is Python's default: `interrupted_while_starting` takes it."""
    name = sys.argv[0].rpartition("/")[2] if sys.argv else ""
    if name == "routing-eval" and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, interrupted_while_starting)


try:
    arm_start_up_interrupt()
except Exception:
    pass

_ROUTED = ("routed", "lm_routing.reporting.routed_lm:RoutedLM")


def _task_dir():
    import importlib.util
    import os

    spec = importlib.util.find_spec("lm_routing_tasks")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "tasks")
    return path if os.path.isdir(path) else None


def _with_our_tasks(include_path, task_dir):
    """`include_path` plus our folder, once, whatever form the caller used."""
    import os

    if include_path is None:
        paths = []
    elif isinstance(include_path, (list, tuple)):
        paths = list(include_path)
    else:
        paths = [include_path]
    real = {os.path.realpath(str(p)) for p in paths}
    if os.path.realpath(task_dir) not in real:
        paths.append(task_dir)
    return paths


def _patch_task_manager(module):
    cls = getattr(module, "TaskManager", None)
    if cls is None or getattr(cls.__init__, "_lm_routing", False):
        return
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        try:
            task_dir = _task_dir()
            if task_dir is not None:
                if len(args) >= 2:  # include_path passed positionally
                    args = (args[0], _with_our_tasks(args[1], task_dir), *args[2:])
                else:
                    kwargs["include_path"] = _with_our_tasks(kwargs.get("include_path"), task_dir)
        except Exception:
            pass
        original(self, *args, **kwargs)

    __init__._lm_routing = True
    __init__.__wrapped__ = original
    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__


def _register_routed(module):
    from lm_eval.api.registry import model_registry

    name, target = _ROUTED
    if name not in model_registry:
        model_registry.register(name, target=target)


_PATCHES = {"lm_eval.tasks.manager": _patch_task_manager, "lm_eval.models": _register_routed}


class _Finder:
    """Meta-path finder that patches lm-eval right after the modules in _PATCHES load."""

    def find_spec(self, fullname, path=None, target=None):
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        try:
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None:
                return None
            loader = spec.loader
            exec_module = loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                try:
                    patch(module)
                except Exception:
                    pass

            loader.exec_module = exec_and_patch
            return spec
        except Exception:
            return None


def install():
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name, patch in _PATCHES.items():
        if name in sys.modules:  # lm_eval imported before us (rare: -S then site)
            patch(sys.modules[name])


try:
    install()
except Exception:
    pass
