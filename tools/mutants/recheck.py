#!/usr/bin/env python3
# Survivors re-run for `make mutants` (docs/VERIFICATION.md, "Mutation testing"):
#   python3 tools/mutants/recheck.py OUT.toml target/mutants/<run>/<pass>/mutants.out/{missed,timeout}.txt
# then make mutants-engine MUTANTS_ARGS="--config OUT.toml" MUTANTS_OUT=... (or mutants-transport).
import sys
# Writes a cargo-mutants config that examines exactly the mutants named in the given
# caught/missed/timeout lists (one name a line).
meta = set('\\.+*?()|[]{}^$#&-~')
names = []
for f in sys.argv[2:]:
    names += [l.strip() for l in open(f) if l.strip()]
with open(sys.argv[1], 'w') as out:
    out.write('examine_re = [\n')
    for n in names:
        rx = '^' + ''.join('\\' + c if c in meta else c for c in n) + '$'
        if "'" in rx:
            # A TOML literal string cannot hold ' (e.g. Tags<'_>): a basic string.
            assert '"' not in rx
            out.write('  "' + rx.replace('\\', '\\\\') + '",\n')
        else:
            out.write("  '" + rx + "',\n")
    out.write(']\n')
print(len(names))
