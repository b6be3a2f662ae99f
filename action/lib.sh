# Shell functions the Action's steps share: list inputs, checksums, workflow commands.
# Sourced, never run; every function is tested in tests/it/actions.rs.

# split_list TEXT: prints each entry of a comma- or newline-separated input on its own line,
# trimmed, skipping empty ones (GitHub passes multi-line inputs as one string).
split_list() {
  local entry
  while IFS= read -r entry; do
    entry="${entry#"${entry%%[![:space:]]*}"}"
    entry="${entry%"${entry##*[![:space:]]}"}"
    if [ -n "$entry" ]; then
      printf '%s\n' "$entry"
    fi
  done < <(printf '%s\n' "$1" | tr ',' '\n')
}

# is_true VALUE: whether an input says yes (true, yes, 1; any case).
is_true() {
  case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in
    true | yes | 1) return 0 ;;
    *) return 1 ;;
  esac
}

# escape_data TEXT: TEXT made safe for a workflow command's message (% CR LF escaped).
escape_data() {
  local text="$1"
  text="${text//'%'/'%25'}"
  text="${text//$'\r'/'%0D'}"
  text="${text//$'\n'/'%0A'}"
  printf '%s' "$text"
}

# annotate KIND MESSAGE: an ::error:: or ::warning:: annotation titled "dragnet".
annotate() {
  printf '::%s title=dragnet::%s\n' "$1" "$(escape_data "$2")"
}

# set_output NAME VALUE: appends a step output, in the form that allows any value.
set_output() {
  local delimiter="dragnet_$RANDOM$RANDOM$RANDOM"
  printf '%s<<%s\n%s\n%s\n' "$1" "$delimiter" "$2" "$delimiter" >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: run this inside GitHub Actions}"
}

# sha256_of FILE: the file's SHA-256 in lowercase hex.
sha256_of() {
  if command -v sha256sum > /dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

# verify_sha256 FILE SUMS: checks FILE against the line of SUMS ("HASH  NAME", as sha256sum
# writes it) that names FILE's base name. Fails, naming both hashes, on a mismatch or when SUMS
# does not list the file.
verify_sha256() {
  local file="$1" sums="$2" name expected actual
  name="$(basename "$file")"
  expected="$(awk -v name="$name" '{ sub(/^\*/, "", $2) } $2 == name { print tolower($1); exit }' "$sums")"
  if [ -z "$expected" ]; then
    annotate error "$(basename "$sums") lists no checksum for $name: refusing to install it"
    return 1
  fi
  actual="$(sha256_of "$file")"
  if [ "$actual" != "$expected" ]; then
    annotate error "checksum mismatch for $name: expected $expected, got $actual; refusing to install it"
    return 1
  fi
  echo "verified $name: sha256 $actual"
}

# download URL DEST: fetches URL over HTTPS only, with retries, failing on an HTTP error.
download() {
  curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
    --retry 3 --retry-delay 2 --output "$2" "$1"
}
