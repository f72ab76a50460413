"""What setup.cfg cannot say: the installed namespace, and the `lm_routing.pth` start-up hook.

One installed namespace: the repository keeps the design card's folders, but `router/` installs as the
package `lm_routing` and `cli/` as `lm_routing.cli`, so nothing named `router` or `cli` lands in
site-packages; the task plugin stays `lm_routing_tasks`. Everything else lives in setup.cfg.

Build hook: ship `lm_routing.pth` so a plain `lm_eval` finds our tasks. The .pth file must sit at the top of
site-packages, which package data cannot reach, so build_py puts it there:
into build_lib for a normal wheel, straight into the unpacked wheel for an
editable install (setuptools' editable_wheel points `install_lib` at it).
"""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PTH_FILE = "lm_routing.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH_FILE, self._pth_target())

    def _pth_target(self):
        if getattr(self, "editable_mode", False):
            return os.path.join(self.get_finalized_command("install").install_lib, PTH_FILE)
        return os.path.join(self.build_lib, PTH_FILE)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return [*outputs, self._pth_target()]


PACKAGE_DIR = {"lm_routing": "router", "lm_routing.cli": "cli"}
PACKAGES = [
    *find_packages(include=["lm_routing_tasks", "lm_routing_tasks.*"]),
    "lm_routing", *(f"lm_routing.{name}" for name in find_packages("router")),
    "lm_routing.cli", *(f"lm_routing.cli.{name}" for name in find_packages("cli")),
]

setup(packages=PACKAGES, package_dir=PACKAGE_DIR, cmdclass={"build_py": BuildPyWithPth})
