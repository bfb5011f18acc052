#!/usr/bin/env bash
# A real look at every kind of email: builds the demo agency on a fresh
# embedded world (SQLite, `.eml` files in the outbox), has it send each kind
# (confirmation, newsletter, digest with its inline PNG chart in Russian and
# English, UX alert, failed recompute) through the API, turns each message
# into an HTML file with its `cid:` images as `data:` URIs
# (tests/src/bin/email_gallery.rs), then renders each file to a PNG in
# headless Chromium (Debian's `chromium`, installed with apt-get if missing
# and run as root). Output: $OUT (default target/email-screenshots, ignored
# by git): <kind>-<n>.html, .eml and .png, and index.txt with the subjects.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/email-screenshots}
WIDTH=${WIDTH:-800}
HEIGHT=${HEIGHT:-1400}

if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed (as root: apt-get install chromium)" >&2
    exit 1
  fi
fi

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Logs go to stdout too: keep only the gallery's own lines (file, subject).
RUST_LOG=${RUST_LOG:-error} cargo run -q -p tests --bin email_gallery -- --out "$OUT" |
  grep -P '^[a-z_]+-[0-9]+\.html\t' > "$OUT/index.txt"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for html in "$OUT"/*.html; do
  png="${html%.html}.png"
  # A fresh profile per page: no state carried from one email to the next.
  rm -rf "$profile" && mkdir -p "$profile"
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --screenshot="$png" \
    --window-size="$WIDTH,$HEIGHT" "file://$html" >/dev/null 2>&1
  [ -s "$png" ] || { echo "no screenshot of $html" >&2; exit 1; }
done
echo "screenshots of $(wc -l < "$OUT/index.txt") emails in $OUT:"
cat "$OUT/index.txt"
