#!/bin/sh
# The man pages in packaging/man: each formats without a single groff warning, and they keep
# up with the code. mchainctl.1 must document every command, subcommand and option that
# `mchainctl --help` lists; mchaind.json.5 every configuration key that agent/config.cc reads.
# Only that direction is checked: a page may document more than the binary offers yet.
#
# usage: man_pages_test.sh MCHAINCTL SOURCE_DIR
set -u

ctl=$1
source_dir=$2
man_dir=$source_dir/packaging/man
failed=0

fail() {
  echo "FAIL: $*"
  failed=1
}

if ! command -v groff >/dev/null 2>&1; then
  echo "FAIL: groff not found (apt-get install groff-base)"
  exit 1
fi

# 1. groff -ww: every warning category. groff exits 0 on warnings, so its stderr is what counts.
for page in mchainctl.1 mchaind.8 mchaind.json.5; do
  file=$man_dir/$page
  if [ ! -f "$file" ]; then
    fail "$file is missing"
    continue
  fi
  section=${page##*.}
  name=${page%.*}
  if ! grep -qi "^\.TH \"\{0,1\}$name\"\{0,1\} $section " "$file"; then
    fail "$page: no '.TH $name $section' line"
  fi
  warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$file" 2>&1)
  if [ -n "$warnings" ]; then
    fail "$page: groff warns:"
    echo "$warnings"
  fi
  text=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -P-cbou "$file" 2>/dev/null)
  for heading in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
    printf '%s\n' "$text" | grep -q "^$heading\$" || fail "$page: no $heading section"
  done
done

# 2. mchainctl.1 against `mchainctl --help`.
help=$("$ctl" --help) || { fail "$ctl --help failed"; help=""; }
page=$man_dir/mchainctl.1
# The entries of the page: the tag line after each .TP, without fonts and with plain dashes,
# so ".B chain show \fIheight\fR|..." gives "chain show height|...".
tags=$(awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' "$page" |
       sed -e 's/^\.[A-Z]* *//' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/"//g')
# Its text as a reader sees it, for options.
text=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -P-cbou "$page" 2>/dev/null)

# A command is the first word of an indented help line that starts with a lower-case letter
# ("  chain show <height|hash> [--json]"), as tests/agent/cli_test.cc reads it for the bash
# completion; a subcommand is a second word made of lower-case letters only.
commands=$(printf '%s\n' "$help" | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' | sort -u)
[ "$(printf '%s\n' "$commands" | grep -c .)" -ge 10 ] ||
  fail "found fewer than 10 commands in mchainctl --help: $commands"
for command in $commands; do
  printf '%s\n' "$tags" | grep -q "^$command\([ ,]\|\$\)" ||
    fail "mchainctl.1 has no entry for '$command', which mchainctl --help lists"
done
subcommands=$(printf '%s\n' "$help" |
  sed -n 's/^  \([a-z][a-z-]*\) \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1:\2/p' | sort -u)
for pair in $subcommands; do
  printf '%s\n' "$tags" | grep -q "^${pair%%:*} ${pair#*:}\([ ,]\|\$\)" ||
    fail "mchainctl.1 has no entry for '${pair%%:*} ${pair#*:}', which mchainctl --help lists"
done
for option in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
  printf '%s\n' "$text" | grep -q -- "$option\([^a-z-]\|\$\)" ||
    fail "mchainctl.1 does not mention $option (written \\-\\- in roff), which mchainctl --help lists"
done

# 3. mchaind.json.5 against the keys agent/config.cc takes (node.take("id"), ...). The page's
# entries are its .SS headings and .TP tags ("node.id (string, required)"); every key must be
# a dotted part of the first word of one.
keys=$(grep -o '\(take\|require\)("[a-z_]*")' "$source_dir/agent/config.cc" |
       sed 's/.*("\(.*\)")/\1/' | sort -u)
[ -n "$keys" ] || fail "found no configuration keys in agent/config.cc"
documented=$(awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 } /^\.SS / { print }' \
               "$man_dir/mchaind.json.5" |
             sed -e 's/^\.[A-Z]* *//' -e 's/\\f[BIRP]//g' -e 's/[" ].*//' | tr '.' '\n' | sort -u)
for key in $keys; do
  printf '%s\n' "$documented" | grep -qx "$key" ||
    fail "mchaind.json.5 has no entry for '$key', which agent/config.cc reads"
done

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "ok: 3 pages without groff warnings; mchainctl.1 covers $(printf '%s\n' "$commands" | wc -l) commands of --help; mchaind.json.5 covers $(printf '%s\n' "$keys" | wc -l) configuration keys"
