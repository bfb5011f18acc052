#!/usr/bin/env bash
# Re-fetches the vendored browser assets of the developer pages (GraphiQL at
# /graphql, the REST reference at /api/v1/docs) from the npm registry and
# checks them against SHA256SUMS. The files are committed and embedded in the
# binary with include_bytes!: nothing is fetched at build or run time, and
# this script is only for a deliberate upgrade.
#
#   bash api/assets/fetch.sh            fetch, then verify against SHA256SUMS
#   bash api/assets/fetch.sh --update   fetch, then rewrite SHA256SUMS
#
# To upgrade, change a version below, run with --update, update README.md
# beside this script, and load both pages (cargo test -p tests --test devpages).
set -euo pipefail
cd "$(dirname "$0")"

GRAPHIQL=3.9.0
REACT=18.3.1
SWAGGER_UI=5.36.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

unpack() { # package@version -> folder in $tmp holding package/
  local spec=$1 dir="$tmp/${1//[@\/]/_}"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  echo "$dir/package"
}

g=$(unpack "graphiql@$GRAPHIQL")
r=$(unpack "react@$REACT")
d=$(unpack "react-dom@$REACT")
s=$(unpack "swagger-ui-dist@$SWAGGER_UI")

mkdir -p graphiql swagger-ui
cp "$g/graphiql.min.js" "$g/graphiql.min.css" graphiql/
cp "$g/LICENSE" graphiql/LICENSE.graphiql
cp "$r/umd/react.production.min.js" graphiql/
cp "$r/LICENSE" graphiql/LICENSE.react
cp "$d/umd/react-dom.production.min.js" graphiql/
cp "$d/LICENSE" graphiql/LICENSE.react-dom
cp "$s/swagger-ui-bundle.js" "$s/swagger-ui.css" "$s/swagger-ui-bundle.js.LICENSE.txt" swagger-ui/
cp "$s/LICENSE" swagger-ui/LICENSE.swagger-ui
[ -f "$s/NOTICE" ] && cp "$s/NOTICE" swagger-ui/NOTICE.swagger-ui

files=(graphiql/* swagger-ui/*)
if [ "${1:-}" = "--update" ]; then
  sha256sum "${files[@]}" >SHA256SUMS
  echo "SHA256SUMS rewritten:"
  cat SHA256SUMS
else
  sha256sum -c SHA256SUMS
fi
