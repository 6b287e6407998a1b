#!/usr/bin/env bash
# Builds the wasm session into web/pkg: the core for wasm32 (profile `wasm`: small over fast)
# and its JavaScript glue from wasm-bindgen-cli, which must be the crate's exact version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
version=0.2.130
bindgen="$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")"
if ! "$bindgen" --version 2>/dev/null | grep -q " $version\$"; then
  echo "wasm-bindgen $version is needed: cargo install wasm-bindgen-cli --version $version" >&2
  exit 3
fi
# A target directory of its own: the build can run while cargo test holds the main one.
target="$root/target/wasm-build"
# The paths of dependencies' sources end up in panic locations inside the file: written
# without this machine's home directory, so that the file does not depend on where it was
# built.
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$registry=/registry"
cargo build --manifest-path "$root/Cargo.toml" -p genesys-notify-wasm \
  --target wasm32-unknown-unknown --profile wasm --locked --target-dir "$target"
"$bindgen" --target web --remove-name-section --remove-producers-section \
  --out-dir "$here/pkg" "$target/wasm32-unknown-unknown/wasm/genesys_notify_wasm.wasm"
echo "built $here/pkg"
