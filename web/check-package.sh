#!/usr/bin/env bash
# Packs genesys-notify-web as `npm publish` would (prepack builds the wasm) and checks the
# tarball as a user's tools see it: its contents, publint, arethetypeswrong, and a strict
# TypeScript compile of a file that uses every entry point against the packed types.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
work="$(mktemp -d)"
trap 'rm -rf "$work"; rm -f "$here"/genesys-notify-web-*.tgz' EXIT
rm -f genesys-notify-web-*.tgz
npm pack --silent >/dev/null
tarball="$(ls genesys-notify-web-*.tgz)"
echo "packed $tarball ($(wc -c <"$tarball") B)"

contents="$(tar -tzf "$tarball")"
for f in package/package.json package/README.md package/LICENSE-MIT package/LICENSE-APACHE \
  package/src/index.js package/src/index.d.ts package/src/react.js package/src/worker.js \
  package/src/reread.js package/src/reread.d.ts \
  package/pkg/genesys_notify_wasm.js package/pkg/genesys_notify_wasm_bg.wasm; do
  grep -qx "$f" <<<"$contents" || { echo "the tarball lacks $f"; exit 1; }
done
contributors='^package/(test/|node_modules/|build\.sh|check-package\.sh)'
if grep -Eq "$contributors" <<<"$contents"; then
  echo "the tarball carries files for contributors:"; grep -E "$contributors" <<<"$contents"; exit 1
fi

# The tools this package's lock file pins, never a download.
node_modules/.bin/publint run "$tarball" --strict
# The wasm file is an asset a bundler copies (its URL is what an import gives), not a module.
node_modules/.bin/attw "$tarball" --profile esm-only --exclude-entrypoints ./genesys_notify_wasm_bg.wasm

# The packed types, unpacked where a user's node_modules would hold them, compiled strictly
# with a file that uses each entry point (no skipLibCheck).
mkdir -p "$work/node_modules/genesys-notify-web" "$work/node_modules/@types"
tar -xzf "$tarball" -C "$work/node_modules/genesys-notify-web" --strip-components=1
cp -r node_modules/@types/react "$work/node_modules/@types/react"
cp -r node_modules/csstype "$work/node_modules/csstype"
cp test/types/usage.ts test/types/assets.d.ts "$work/"
cat >"$work/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "ES2022",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "lib": ["ES2022", "DOM"],
    "types": []
  },
  "files": ["usage.ts", "assets.d.ts"]
}
JSON
node_modules/.bin/tsc -p "$work/tsconfig.json"
echo "types compile strictly against the packed package"

# A server render imports what a page imports: every entry point of the packed package loads
# in Node without throwing (React beside it, as the app that renders has it).
cp -r node_modules/react "$work/node_modules/react"
for entry in genesys-notify-web genesys-notify-web/shared genesys-notify-web/worker \
  genesys-notify-web/react genesys-notify-web/pkce genesys-notify-web/reread; do
  (cd "$work" && node --input-type=module -e "await import('$entry')") ||
    { echo "importing $entry in Node throws: a server render of a page that imports it fails"; exit 1; }
done
echo "every entry point imports in Node"
