#!/usr/bin/env python3
"""
Writer for test/maintenance/gc.test.ts: rewrites, deletes and recreates files
whose contents all come from one small shared pool, so the same content is
written to many files by several processes at once. The pool is used two
contents at a time, the pair moving on every third of a second, so contents keep
falling out of use (their blobs become garbage) and coming back (a commit of
them is a dedup hit on a blob a concurrent gc has just swept or is about to).

  maint-dedup-writer.py <mnt> <rel_dir> <log> <seed> <seconds> <pool_seed>

Logs (O_APPEND, one write(2) per line, so several processes can share one log
and its order is the order of events; each line starts with $CRASH_TAG):
  pool <index> <sha256>                 the contents, at start
  begin-write <path> <content_index>    before open(O_CREAT|O_TRUNC)
  wrote <path> <content_index>          after close(2) returned
  begin-delete <path>, deleted <path>   around unlink(2)
and 'end' when it stopped by itself after <seconds>.
"""
import hashlib
import os
import random
import sys
import time

KIB = 1024


def pool(pool_seed):
    """Twelve contents: small (memory + journal path) and large (staging files, several chunks)."""
    rnd = random.Random(pool_seed)
    sizes = [3 * KIB, 100 * KIB, 250 * KIB, 300 * KIB, 1024 * KIB, 2600 * KIB] * 2
    out = []
    for i, size in enumerate(sizes):
        unit = f'pool-{pool_seed}-{i}|'.encode()  # distinct per index: equal sizes never dedup by accident
        body = (unit * (size // len(unit) + 1))[:size]
        # A little randomness per content so no two share a chunk by accident.
        if size:
            body = bytes([rnd.randrange(256)]) + body[1:]
        out.append(body)
    return out


def main():
    mnt, rel_dir, log_path, seed, seconds, pool_seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    rnd = random.Random(seed)
    contents = pool(pool_seed)
    logfd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    tag = os.environ.get('CRASH_TAG', 'dedup')

    def log(*w):
        os.write(logfd, (' '.join(str(x) for x in (tag,) + w) + '\n').encode())

    for i, c in enumerate(contents):
        log('pool', i, hashlib.sha256(c).hexdigest())
    d = os.path.join(mnt, rel_dir)
    os.makedirs(d, exist_ok=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        name = f'f{rnd.randrange(5)}'
        rel = f'{rel_dir}/{name}'
        path = os.path.join(mnt, rel)
        if rnd.random() < 0.15 and os.path.exists(path):
            log('begin-delete', rel)
            os.unlink(path)
            log('deleted', rel)
            continue
        # Every writer uses the same two contents at a time, and the pair moves on every third
        # of a second: a content falls out of use everywhere (gc may sweep it), then comes back
        # four seconds later (a dedup hit on a blob gc has just swept, or is about to).
        window = int(time.time() * 3) % len(contents)
        i = (window + rnd.randrange(2)) % len(contents)
        data = contents[i]
        log('begin-write', rel, i)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + rnd.choice([4 * KIB, 64 * KIB, 128 * KIB, 512 * KIB])])
        if rnd.random() < 0.2:
            os.fsync(fd)
        os.close(fd)
        log('wrote', rel, i)
    log('end')


if __name__ == '__main__':
    main()
