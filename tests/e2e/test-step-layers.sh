# Step layers in real VMs: two steps build two chained layers in one boot, a rebuild with the same
# keys boots nothing, a changed step reuses the cached prefix, a failing step keeps the good ones.
# (The scenario lives in tests/unit/builder/provider/qemu/test-runner.c; this script gives it a base image.)
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"

base_dir=$(ensure_base)
IMGBUILD_TEST_BASE_DIR=$base_dir "$IMGBUILD_BINARY_DIR/tests/test-runner"
echo "ok"
