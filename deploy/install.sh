#!/bin/sh
# Install ogdc-hooks from the source tree in the current directory into a new virtual
# environment at $1, the way the image has it: the dependencies pinned by
# deploy/requirements.lock and checked against its hashes (two builds a month apart get
# the same ones), then the package itself without dependencies; compiled to bytecode (the
# image's root filesystem is read-only), and neither pip nor setuptools.
# The image's build stage runs this; so does the test that runs the service as the image does.
set -eu
target=${1:?usage: install.sh TARGET_DIR}
python3 -m venv --without-pip "$target"
pip_install() {
  python3 -m pip --python "$target/bin/python" install \
    --disable-pip-version-check --no-warn-script-location "$@"
}
pip_install --require-hashes --no-deps -r deploy/requirements.lock
pip_install --no-deps .
"$target/bin/ogdc-hooks" version
