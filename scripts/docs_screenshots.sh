#!/usr/bin/env bash
# Screenshots of the built site (make docs) in headless Chromium (Debian's chromium package), so that what a
# reader sees is looked at, not only what the strict build accepts:
#   scripts/docs_screenshots.sh [OUT_DIR]   (default docs/screenshots)
# Serves site/ on a local port (the site's links are directory URLs, which file:// does not resolve).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "docs_screenshots: no chromium; apt-get install chromium" >&2; exit 1; }
[ -f site/index.html ] || { echo "docs_screenshots: no site/; run make docs first" >&2; exit 1; }
mkdir -p "$out"
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
python3 -m http.server "$port" --directory site --bind 127.0.0.1 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do  # until the server answers (a shot of a page not yet served would be an error page)
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
  sleep 0.1
done
shot() {  # page path, file name
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1000 \
    --screenshot="$out/$2" "http://127.0.0.1:$port/$1" >/dev/null 2>&1
  echo "$out/$2 <- /$1"
}
shot "" home.png
shot "tutorials/own-reward/" tutorial_own_reward.png
shot "reference/options/" options_reference.png
