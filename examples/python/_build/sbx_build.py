"""The build backend: setuptools' own (setuptools.build_meta), with one
fallback. setuptools before 70.1 cannot make a wheel without the `wheel`
package, which `pip install --no-build-isolation --no-index` cannot fetch
(a fresh venv, or pyenv's Python, has setuptools but not wheel). Only then
is the wheel, a zip of pure Python files, written here with the standard
library; everything else is setuptools'.
"""

import base64
import hashlib
import os
import re
import zipfile

from setuptools import build_meta as _st
from setuptools.build_meta import *  # noqa: F401,F403  (build_sdist, get_requires_*...)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "sandboxfs"


def _setuptools_can_wheel():
    try:
        import setuptools.command.bdist_wheel  # noqa: F401  (setuptools >= 70.1)
        return True
    except ImportError:
        pass
    try:
        import wheel.bdist_wheel  # noqa: F401
        return True
    except ImportError:
        return False


def _project():
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        text = f.read().decode()
    try:
        import tomllib
        return tomllib.loads(text)["project"]
    except ImportError:  # Python < 3.11: the few plain string keys used here
        out = {}
        for key in ("name", "version", "description", "requires-python"):
            m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(key), text, re.M)
            if m:
                out[key] = m.group(1)
        return out


def _dist_info(p):
    name, version = p["name"], p["version"]
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)
    if p.get("description"):
        meta += "Summary: %s\n" % p["description"]
    if p.get("requires-python"):
        meta += "Requires-Python: %s\n" % p["requires-python"]
    readme = os.path.join(HERE, "README.md")
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as f:
            meta += "Description-Content-Type: text/markdown\n\n" + f.read()
    d = "%s-%s.dist-info" % (name.replace("-", "_"), version)
    return d, {
        d + "/METADATA": meta.encode(),
        d + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: sbx_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        d + "/top_level.txt": (PACKAGE + "\n").encode(),
    }


def _write_wheel(wheel_directory, files):
    p = _project()
    d, meta = _dist_info(p)
    files = dict(files)
    files.update(meta)
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record.append(d + "/RECORD,,")
    files[d + "/RECORD"] = ("\n".join(record) + "\n").encode()
    whl = "%s-%s-py3-none-any.whl" % (p["name"].replace("-", "_"), p["version"])
    with zipfile.ZipFile(os.path.join(wheel_directory, whl), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return whl


def _package_files():
    files = {}
    top = os.path.join(HERE, PACKAGE)
    for dirpath, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for n in sorted(names):
            if n.endswith(".py"):
                full = os.path.join(dirpath, n)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, HERE).replace(os.sep, "/")] = f.read()
    return files


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _setuptools_can_wheel():
        return _st.build_wheel(wheel_directory, config_settings, metadata_directory)
    return _write_wheel(wheel_directory, _package_files())


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    if _setuptools_can_wheel():
        return _st.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    d, meta = _dist_info(_project())
    for path, data in meta.items():
        full = os.path.join(metadata_directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return d


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    if _setuptools_can_wheel() and hasattr(_st, "build_editable"):
        return _st.build_editable(wheel_directory, config_settings, metadata_directory)
    return _write_wheel(wheel_directory, {"__editable__.%s.pth" % PACKAGE: (HERE + "\n").encode()})


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    if _setuptools_can_wheel() and hasattr(_st, "prepare_metadata_for_build_editable"):
        return _st.prepare_metadata_for_build_editable(metadata_directory, config_settings)
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)
