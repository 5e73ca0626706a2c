#!/usr/bin/env python3
"""Counts the cache lines each step of a removal touches (make footprint).

Reads, on stdin, `valgrind --tool=lackey --trace-mem=yes --log-fd=2` of
`benches/examples/footprint.rs` merged with that program's own notes (see its doc), and
prints, per kind of step (the receiving core, mgr = core 0, and the datagram's length,
or a timer step), the distinct 64-byte lines of code and of data it touched before its
first datagram was built (`to reply`: a real step's read-to-send path) and the new ones
after; the data split into the stack, the node cores' bodies, their heap buffers and
the rest (statics, read-only tables, libc), and the distinct 4 KiB pages of the code
and the data to reply (each a TLB entry; after a quiet spell, a page walk of its own).
Then, for the steps named with --functions,
the code lines to reply by function and the heap lines by the size of their block (with
--block, the offsets touched in blocks of that size); with --inlined, those of the functions whose name
holds a given text by what the compiler inlined into them (addr2line's frames).

usage: valgrind ... 2>&1 >/dev/null | benches/footprint.py BINARY [--functions KIND,...]
       [--inlined TEXT] [--block SIZE]
"""
import bisect
import collections
import subprocess
import sys


def main():
    binary = sys.argv[1]
    detail = set()
    if '--functions' in sys.argv:
        detail = set(sys.argv[sys.argv.index('--functions') + 1].split(','))
    block_size = None
    if '--block' in sys.argv:
        block_size = int(sys.argv[sys.argv.index('--block') + 1])
    inlined = None
    if '--inlined' in sys.argv:
        inlined = sys.argv[sys.argv.index('--inlined') + 1]
    begin = first = end = stack = cores = core_size = None
    n_cores = 0
    allocs = {}        # address -> size, live blocks
    steps = []         # kinds of the marked steps, in order
    done = []          # (code, data, written) before and after the first send
    cur = None
    for raw in sys.stdin.buffer:
        h = raw[:1]
        if h == b'I':
            if cur is not None:
                cur[cur[6]].add(int(raw[3:].split(b',')[0], 16) >> 6)
            continue
        if h == b' ':
            if cur is None and begin is None:
                continue
            c = raw[1:2]
            a = int(raw[3:].split(b',')[0], 16)
            if a == begin:
                cur = [set(), set(), set(), set(), set(), set(), 0]
            elif a == first:
                if cur is not None and cur[6] == 0:
                    cur[6] = 3
            elif a == end:
                if cur is not None:
                    done.append((cur[:6], dict(allocs)))
                cur = None
            elif cur is not None:
                k = cur[6]
                cur[k + 1].add(a >> 6)
                if c != b'L':
                    cur[k + 2].add(a >> 6)
            continue
        if h != b'F':
            continue
        p = raw.split()
        if p[0] == b'FPA':
            allocs[int(p[1], 16)] = int(p[2])
        elif p[0] == b'FPF':
            allocs.pop(int(p[1], 16), None)
        elif p[0] == b'FPD':
            steps.append('timer' if p[1] == b'T' else
                         f"{'mgr' if p[2] == b'0' else 'member'} <- {int(p[3])} B")
        elif p[0] == b'FPS' and steps and steps[-1] == 'timer':
            # A timer step is named by what it sends first (heartbeat, M-sub, ...).
            steps[-1] = f"timer -> {int(p[1])} B"
        elif p[0] == b'FPM':
            begin, first, end, stack, cores = (int(x, 16) for x in p[1:6])
            core_size = int(p[6])
            n_cores = allocs.get(cores, 0) // max(core_size, 1)
    if begin is None or not done:
        sys.exit('footprint.py: no marked steps in the input')
    # Code by function: the binary's symbols, moved by where the marker landed.
    nm = subprocess.run(['nm', '-n', '-C', '-S', binary], capture_output=True, text=True).stdout
    syms = []
    base = None
    for line in nm.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and f[3].endswith('MARK_BEGIN'):
            base = begin - int(f[0], 16)
    for line in nm.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and f[2] in 'tTwW':
            syms.append((int(f[0], 16) + (base or 0), int(f[1], 16), f[3]))
    syms.sort()
    starts = [s[0] for s in syms]

    def function(line):
        i = bisect.bisect_right(starts, line << 6) - 1
        if i >= 0 and (line << 6) < syms[i][0] + max(syms[i][1], 1):
            return syms[i][2]
        return '(outside the binary: libc, loader)'

    def owner(line, blocks, order):
        a = line << 6
        if cores <= a + 63 and a < cores + n_cores * core_size:
            return 'body'
        if stack - (8 << 20) < a < stack + (1 << 20):
            return 'stack'
        i = bisect.bisect_right(order, a + 63) - 1
        if i >= 0 and a < order[i] + max(blocks[order[i]], 1):
            return 'heap'
        return 'other'

    kinds = collections.defaultdict(list)
    for kind, (sets, blocks) in zip(steps, done):
        kinds[kind].append((sets, blocks))
    print(f"{len(done)} steps; lines of 64 bytes per step (mean)")
    print(f"{'step':16} {'n':>4} | {'to reply: code':>14} {'data':>6} "
          f"{'stack':>6} {'body':>6} {'heap':>6} {'other':>6} {'written':>7} | "
          f"{'after: code':>11} {'data':>6} | {'pages: code':>11} {'data':>5}")
    for kind in sorted(kinds):
        v = kinds[kind]
        n = len(v)
        o = collections.Counter()
        for sets, blocks in v:
            order = sorted(blocks)
            for line in sets[1]:
                o[owner(line, blocks, order)] += 1

        def mean(f):
            return sum(f(s) for s, _ in v) / n
        print(f"{kind:16} {n:4} | {mean(lambda s: len(s[0])):14.1f} {mean(lambda s: len(s[1])):6.1f} "
              f"{o['stack'] / n:6.1f} {o['body'] / n:6.1f} {o['heap'] / n:6.1f} {o['other'] / n:6.1f} "
              f"{mean(lambda s: len(s[2])):7.1f} | {mean(lambda s: len(s[3] - s[0])):11.1f} "
              f"{mean(lambda s: len(s[4] - s[1])):6.1f} | "
              f"{mean(lambda s: len({x >> 6 for x in s[0]})):11.1f} "
              f"{mean(lambda s: len({x >> 6 for x in s[1]})):5.1f}")
    for kind in sorted(detail & set(kinds)):
        v = kinds[kind]
        by = collections.Counter()
        for sets, _ in v:
            for line in sets[0]:
                by[function(line)] += 1
        print(f"\n{kind}: code lines to reply by function (mean of {len(v)})")
        for f, c in by.most_common(25):
            print(f"{c / len(v):7.2f}  {f[:150]}")
        blocks_by = collections.Counter()
        for sets, blocks in v:
            order = sorted(blocks)
            for line in sets[1]:
                a = line << 6
                i = bisect.bisect_right(order, a + 63) - 1
                if owner(line, blocks, order) == 'heap':
                    blocks_by[f"a block of {blocks[order[i]]} bytes"] += 1
        print(f"\n{kind}: heap lines to reply by the size of their block (mean of {len(v)})")
        for f, c in blocks_by.most_common(12):
            print(f"{c / len(v):7.2f}  {f}")
        if block_size:
            offsets = collections.Counter()
            for sets, blocks in v:
                order = sorted(blocks)
                for line in sets[1]:
                    i = bisect.bisect_right(order, (line << 6) + 63) - 1
                    if i >= 0 and blocks[order[i]] == block_size and \
                            owner(line, blocks, order) == 'heap':
                        offsets[((line << 6) - order[i]) // 64 * 64] += 1
            print(f"\n{kind}: offsets touched in blocks of {block_size} bytes (times per step)")
            print('  '.join(f"{o}:{c / len(v):.1f}" for o, c in sorted(offsets.items())))
        if inlined:
            lines = collections.Counter()
            for sets, _ in v:
                for line in sets[0]:
                    if inlined in function(line):
                        lines[line] += 1
            print(f"\n{kind}: code lines to reply in functions named *{inlined}*, "
                  f"by the call inlined into them (outermost first)")
            for f, c in inlined_frames(binary, base or 0, lines).most_common(30):
                print(f"{c / len(v):7.2f}  {f}")


def inlined_frames(binary, base, lines):
    """The lines (with their counts) by the frame inlined into their function, as
    addr2line names it for the middle of each line."""
    order = sorted(lines)
    addrs = ['%x' % ((line << 6) - base + 32) for line in order]
    out = subprocess.run(['addr2line', '-a', '-i', '-f', '-C', '-e', binary] + addrs,
                         capture_output=True, text=True).stdout.splitlines()
    frames = []
    for o in out:
        if o.startswith('0x'):
            frames.append([])
        elif frames:
            frames[-1].append(o)
    by = collections.Counter()
    for line, f in zip(order, frames):
        names = f[0::2]
        # Innermost first: the one before the last is what was inlined into the
        # function itself; the innermost says what it came down to.
        outer = names[-2] if len(names) > 1 else '(the function itself)'
        inner = names[0] if len(names) > 1 else ''
        key = outer.split('(')[0][-70:]
        if inner and inner != outer:
            key += '  >  ' + inner.split('(')[0][-50:]
        by[key] += lines[line]
    return by


if __name__ == '__main__':
    main()
