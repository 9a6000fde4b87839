#!/bin/sh
# Install ogdc-hooks from the source tree in the current directory into a new virtual
# environment at $1, the way the image has it: the package and its dependencies, compiled
# to bytecode (the image's root filesystem is read-only), and neither pip nor setuptools.
# The image's build stage runs this; so does the test that runs the service as the image does.
set -eu
target=${1:?usage: install.sh TARGET_DIR}
python3 -m venv --without-pip "$target"
python3 -m pip --python "$target/bin/python" install \
  --disable-pip-version-check --no-warn-script-location .
"$target/bin/ogdc-hooks" version
