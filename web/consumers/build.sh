#!/usr/bin/env bash
# Builds the consumer apps as a web team would: genesys-notify-web is packed (`npm pack`, whose
# prepack builds the wasm), and each app installs that tarball — not a link to this
# repository — beside the packages its own lock file pins, then builds with its bundler's
# defaults plus only what the package README says. tests/tests/browser.rs serves the builds
# (and `vite dev`) and loads them in Chromium against the simulator.
#   bash web/consumers/build.sh            # all of vite, webpack, next
#   bash web/consumers/build.sh vite       # some
set -euo pipefail
export NEXT_TELEMETRY_DISABLED=1
here="$(cd "$(dirname "$0")" && pwd)"
apps=("$@")
[ ${#apps[@]} -gt 0 ] || apps=(vite webpack next)

rm -rf "$here/.pack" && mkdir -p "$here/.pack"
(cd "$here/.." && npm pack --silent --pack-destination "$here/.pack" >/dev/null)
tarball="$(ls "$here"/.pack/genesys-notify-web-*.tgz)"
echo "packed $(basename "$tarball")"

for app in "${apps[@]}"; do
  dir="$here/$app"
  [ -f "$dir/package.json" ] || { echo "no consumer app '$app' (vite, webpack, next)"; exit 2; }
  echo "== $app"
  if [ "$app" != next ]; then
    mkdir -p "$dir/src"
    # Vite's entry is the page; webpack's html plugin adds its bundle to the page itself.
    if [ "$app" = vite ]; then
      sed 's#</title>#</title>\n<script type="module" src="/src/app.js"></script>#' "$here/index.html" >"$dir/index.html"
    else
      cp "$here/index.html" "$dir/index.html"
    fi
    cp "$here/app.js" "$dir/src/app.js"
  fi
  # The app's own packages as its lock file pins them, then the packed package.
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error &&
    npm install --no-save --no-audit --no-fund --loglevel=error "$tarball")
  (cd "$dir" && npm run --silent build)
done
