#!/usr/bin/env bash
# The README's first command on a fresh machine, as an unprivileged user: a clone of this
# repository's HEAD in a temporary directory runs `bash scripts/demo.sh` as the user diskimg-ci
# with its own empty HOME and no pnpm on PATH (node, npm and the base system only), then the
# demo image must exist. npm's certificate setting (cafile), when root's npm has one, is passed
# on as NPM_CONFIG_CAFILE (another user's npm does not read root's global config). The pnpm store
# is kept in /var/tmp/diskimg-ci-store between runs, so a second run downloads no packages.
# Needs root (to create the user); otherwise it says so and exits 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" != 0 ]; then
  echo "fresh-user check: skipped (needs root to create an unprivileged user)"
  exit 0
fi
user=diskimg-ci
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
tmp=$(mktemp -d /tmp/diskimg-fresh.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
# A PATH with every command of the system's bin directories except pnpm's.
mkdir "$tmp/bin"
for d in /usr/local/bin /usr/bin /bin; do
  for f in "$d"/*; do
    n=${f##*/}
    case "$n" in pnpm | pnpx | pn | pnx) continue ;; esac
    [ -e "$tmp/bin/$n" ] || ln -s "$f" "$tmp/bin/$n"
  done
done
git clone --quiet "$root" "$tmp/repo"
mkdir "$tmp/home"
store=/var/tmp/diskimg-ci-store
mkdir -p "$store"
chown -R "$user" "$tmp/repo" "$tmp/home" "$store"
cafile=$(npm config get cafile 2>/dev/null || true)
[ "$cafile" = null ] && cafile=
envs=(HOME="$tmp/home" USER="$user" LOGNAME="$user" PATH="$tmp/bin:/usr/sbin:/sbin" LANG=C.UTF-8
  npm_config_store_dir="$store" pnpm_config_store_dir="$store")
[ -n "$cafile" ] && envs+=(NPM_CONFIG_CAFILE="$cafile")
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && envs+=(NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS")
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
echo "fresh-user check: bash scripts/demo.sh as $user in a clone of HEAD, no pnpm on PATH"
if runuser -u "$user" -- env -i "${envs[@]}" bash -c 'cd "$0" && ! command -v pnpm >/dev/null && bash scripts/demo.sh' "$tmp/repo" >"$tmp/log" 2>&1 &&
  [ -s "$tmp/repo/demo/demo.img" ]; then
  echo "fresh-user check: ok"
else
  cat "$tmp/log" >&2
  echo "fresh-user check: FAILED" >&2
  exit 1
fi

# Issue 26.22: `su USER -c 'bash scripts/demo.sh'` keeps root's PATH, which may hold directories
# the user cannot search; with getfattr not found, spawn then says EACCES instead of ENOENT. The
# demo must still build (getfattr missing is a warning) and its show print no ERROR line.
if command -v su >/dev/null; then
  mkdir -m 700 "$tmp/rootonly"
  mkdir "$tmp/bin2"
  for f in "$tmp"/bin/*; do
    case "${f##*/}" in getfattr) continue ;; esac
    ln -s "$(readlink "$f")" "$tmp/bin2/${f##*/}"
  done
  echo "fresh-user check: su $user -c 'bash scripts/demo.sh' with an unsearchable PATH entry and no getfattr"
  if env -i "${envs[@]}" PATH="$tmp/rootonly:$tmp/bin2:/usr/sbin:/sbin" \
    su "$user" -c "cd $(printf %q "$tmp/repo") && bash scripts/demo.sh" >"$tmp/log2" 2>&1 &&
    grep -q 'getfattr could not be run' "$tmp/log2" && ! grep -q 'ERROR' "$tmp/log2"; then
    echo "fresh-user check: su ok"
  else
    cat "$tmp/log2" >&2
    echo "fresh-user check: su FAILED" >&2
    exit 1
  fi
fi
