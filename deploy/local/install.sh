#!/usr/bin/env bash
# Installs mirror-scheduler and mirror-worker for the current user: the binaries with
# `cargo install` (into ~/.cargo/bin, which rustup puts on PATH), their bash, zsh and fish
# completions, and their man pages (~/.local/share/man, which man reads). Takes about as
# long as a release build (5-7 minutes on 2 cores the first time).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo install --locked --path scheduler
cargo install --locked --path worker
bin="${CARGO_HOME:-$HOME/.cargo}/bin"

data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/bash-completion/completions" "$data/zsh/site-functions" \
  "$data/fish/vendor_completions.d" "$data/man/man1"
for b in mirror-scheduler mirror-worker; do
  "$bin/$b" completions bash >"$data/bash-completion/completions/$b"
  "$bin/$b" completions zsh >"$data/zsh/site-functions/_$b"
  "$bin/$b" completions fish >"$data/fish/vendor_completions.d/$b.fish"
  "$bin/$b" man "$data/man/man1"
done
echo "installed: $bin/mirror-scheduler, $bin/mirror-worker ($("$bin/mirror-scheduler" --version))" >&2
echo "completions under $data/{bash-completion,zsh,fish}, man pages in $data/man/man1 (man mirror-scheduler)" >&2
