#!/usr/bin/env bash
# Build erofs-utils 1.9.x with --enable-s3 (the C reference for the benchmarks) from Debian's
# unstable source package, into a cache folder, and print the path of mkfs.erofs.
#
# Usage: [S3EROFS_BENCH_CACHE=DIR] [MAX_BLOCK_SIZE=65536] bench/build-mkfs-erofs.sh
#   DIR (default bench/.cache/erofs-utils) gets src/, apt/ and bin/{mkfs,fsck,dump}.erofs;
#   MAX_BLOCK_SIZE is passed to configure (default: the page size, 4096 here).
#
# The Debian archive address is read from this machine's own apt sources, so no host name is
# written into the repository. The deb-src entry for unstable lives in a temporary apt config
# under the cache; the system's sources and lists are left untouched. Idempotent: a cached
# binary whose --version says 1.9 is reused.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${S3EROFS_BENCH_CACHE:-$here/.cache/erofs-utils}"
bin="$cache/bin/mkfs.erofs"

log() { echo "build-mkfs-erofs: $*" >&2; }

# MAX_BLOCK_SIZE (bytes, optional) goes to configure: 1.9 reads only blocks up to it
settings="max_block_size=${MAX_BLOCK_SIZE:-page}"
stamp="$cache/bin/.settings"

if [[ -x "$bin" ]] && "$bin" --version 2>&1 | grep -q ' 1\.9' \
        && [[ "$(cat "$stamp" 2>/dev/null)" == "$settings" ]]; then
    echo "$bin"
    exit 0
fi

# the first non-security Debian archive URI of the apt sources (deb822 or one-line style)
archive_uri() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
            /etc/apt/sources.list.d/*.sources | grep -E '/debian/?$' | head -n1 || true)"
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) print $i }' \
            /etc/apt/sources.list | grep -E '/debian/?$' | head -n1 || true)"
    fi
    if [[ -z "$uri" ]]; then
        log "no Debian archive URI (…/debian) found in /etc/apt/sources.list{,.d/*.sources}"
        exit 1
    fi
    echo "${uri%/}"
}

uri="$(archive_uri)"
aptdir="$cache/apt"
mkdir -p "$aptdir/lists/partial" "$cache/src" "$cache/bin"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb-src [signed-by=$keyring] $uri unstable main" >"$aptdir/sources.list"
apt_opts=(
    -o "Dir::Etc::sourcelist=$aptdir/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$aptdir/lists"
    -o "APT::Get::List-Cleanup=0"
    -o "APT::Sandbox::User=root"
)

log "fetching the unstable source index"
apt-get "${apt_opts[@]}" -qq update

log "installing build dependencies"
# apt needs the system's own package lists once (a fresh machine has none)
if ! apt-cache policy autoconf 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get -qq update
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    build-essential dpkg-dev libcurl4-openssl-dev libxml2-dev libssl-dev liblz4-dev \
    liblzma-dev libzstd-dev uuid-dev zlib1g-dev libfuse3-dev pkg-config autoconf automake \
    libtool >/dev/null

log "downloading the erofs-utils source package"
cd "$cache/src"
rm -rf erofs-utils-*/
apt-get "${apt_opts[@]}" -qq source --download-only erofs-utils >/dev/null
dsc="$(ls -1 erofs-utils_*.dsc | sort -V | tail -n1)"
dpkg-source --no-check -x "$dsc" >/dev/null
srcdir="$(ls -1d erofs-utils-*/ | sort -V | tail -n1)"
cd "$srcdir"

log "building $(basename "$srcdir") with --enable-s3"
if [[ ! -x configure ]]; then
    ./autogen.sh >"$cache/build.log" 2>&1 || { cat "$cache/build.log" >&2; exit 1; }
fi
# fuse and the compressors are not needed for meta-only images; keep the build small
configure_vars=()
if [[ -n "${MAX_BLOCK_SIZE:-}" ]]; then
    configure_vars+=("MAX_BLOCK_SIZE=$MAX_BLOCK_SIZE")
fi
./configure -q --enable-s3 --disable-fuse --disable-lz4 --disable-lzma \
    --without-libzstd --without-qpl --without-xxhash "${configure_vars[@]}" \
    >>"$cache/build.log" 2>&1 || { cat "$cache/build.log" >&2; exit 1; }
make -s -j"$(nproc)" >>"$cache/build.log" 2>&1 || { cat "$cache/build.log" >&2; exit 1; }

for tool in mkfs.erofs fsck.erofs dump.erofs; do
    dir="${tool%%.*}"
    cp "$dir/$tool" "$cache/bin/$tool"
done
echo "$settings" >"$stamp"
"$bin" --version >&2
echo "$bin"
