"""Build hook: ship `lm_routing.pth` so a plain `lm_eval` finds our tasks.

Everything else lives in setup.cfg. The .pth file must sit at the top of
site-packages, which package data cannot reach, so build_py puts it there:
into build_lib for a normal wheel, straight into the unpacked wheel for an
editable install (setuptools' editable_wheel points `install_lib` at it).
"""

import os

from setuptools import setup
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


setup(cmdclass={"build_py": BuildPyWithPth})
