"""Metadata lives in setup.cfg; this file only adds one build step.

The demo's sample faces are kept once, in ``data/samples/`` (with their sources and
licences in its README.rst).  So that a non-editable install (``pip install .``, a wheel)
carries them too, ``build_py`` copies them into ``dcgan_complete/samples/`` of the build,
where ``dcgan_complete.demo.samples_dir()`` looks first.  MANIFEST.in puts them in sdists.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"


class BuildPyWithSamples(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "dcgan_complete" / "samples"
        target.mkdir(parents=True, exist_ok=True)
        for src in sorted(SAMPLES.glob("*.png")) + [SAMPLES / "README.rst"]:
            shutil.copyfile(src, target / src.name)


setup(cmdclass={"build_py": BuildPyWithSamples})
