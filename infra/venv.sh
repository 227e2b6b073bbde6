# Sourced by infra/local/stack.sh and infra/fuzz.sh.
#
# ensure_venv DIR REQUIREMENTS PROGRAM WHAT: makes DIR a virtualenv with the
# pinned REQUIREMENTS installed, unless DIR/bin/PROGRAM exists and the
# requirements file is unchanged since the last install (its SHA-256 is kept
# in DIR/.requirements.sha256).
ensure_venv() {
  local dir=$1 requirements=$2 program=$3 what=$4 want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ -x "$dir/bin/$program" ] && [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  printf 'Installing %s into %s ...\n' "$what" "${dir##*/}" >&2
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$dir/.requirements.sha256"
}
