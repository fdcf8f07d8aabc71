# A recipe's copy, download and run steps in a real VM, then a fully cached rebuild and a failing
# download (the scenario is tests/unit/builder/build/test-build-steps.c; this gives it a base image).
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"

base_dir=$(ensure_base)
IMGBUILD_TEST_BASE_DIR=$base_dir "$IMGBUILD_BINARY_DIR/tests/test-build-steps"
echo "ok"
