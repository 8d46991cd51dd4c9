#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, starting from the
# committed seed corpus, and fails (non-zero) if any target crashes.
#
#   fuzz/smoke.sh                    # every target, 20 s each
#   FUZZ_SECONDS=60 fuzz/smoke.sh    # longer
#   fuzz/smoke.sh decode roundtrip   # some targets only
#   FUZZ_TOOLCHAIN=stable fuzz/smoke.sh   # stable + RUSTC_BOOTSTRAP=1
#
# Installs cargo-fuzz if it is missing. Uses the nightly toolchain when rustup
# has one, else stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags).
# The corpus is copied to a temporary directory, so runs never grow the
# repository; crash inputs land in fuzz/artifacts/<target>/ (gitignored).
set -euo pipefail

seconds="${FUZZ_SECONDS:-20}"
max_len="${FUZZ_MAX_LEN:-4096}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# FUZZ_TOOLCHAIN=stable forces the stable fallback (to test it).
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
    if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
        toolchain=nightly
    else
        toolchain=stable
    fi
fi
if [ "$toolchain" = nightly ]; then
    cargo=(cargo +nightly)
else
    echo "smoke.sh: using the $toolchain toolchain with RUSTC_BOOTSTRAP=1" >&2
    cargo=(cargo)
    if command -v rustup >/dev/null 2>&1; then
        cargo=(cargo "+$toolchain")
    fi
    export RUSTC_BOOTSTRAP=1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${cargo[@]}" fuzz list --fuzz-dir "$fuzz_dir")
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build first, so that a compile error is not mistaken for a crash.
"${cargo[@]}" fuzz build --fuzz-dir "$fuzz_dir"

failed=()
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    if [ -d "$fuzz_dir/corpus/$target" ]; then
        cp -R "$fuzz_dir/corpus/$target/." "$corpus/"
    fi
    len="$max_len"
    malloc_mb=2048
    if [ "$target" = hub_request ]; then
        # Its seeds include a subscribe with 1000 selectors (about 11 KiB);
        # no single allocation of the hub's request path needs 256 MiB.
        [ -n "${FUZZ_MAX_LEN:-}" ] || len=16384
        malloc_mb=256
    fi
    echo "smoke.sh: fuzzing $target for ${seconds}s" >&2
    if ! "${cargo[@]}" fuzz run --fuzz-dir "$fuzz_dir" "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len="$len" -rss_limit_mb=2048 \
        -malloc_limit_mb="$malloc_mb" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "smoke.sh: no crash in ${targets[*]}" >&2
