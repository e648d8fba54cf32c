#!/usr/bin/env python3
"""
Workloads for test/crash/mount-crash.test.ts (and test/maintenance/gc.test.ts):
plain processes doing file-system work on a Nexus mount while the test kills
the daemon with SIGKILL. Every process logs what it did to a file OUTSIDE the
mount, one line per event, each written with one write(2) on an O_APPEND
descriptor *after* the operation it reports returned (a line is never claimed
for work that did not complete). When the daemon dies, every call into the
mount fails (ENOTCONN) and the process exits; the test then checks the tree
against the logs.

  crash-ops.py writer   <mnt> <rel_dir> <log> <seed> <ver_base> [files] [max_size]
  crash-ops.py renamer  <mnt> <state.json> <log> <seed> <counter_base>
  crash-ops.py snapper  <mnt> <rel_dir> <log> <seed>
  crash-ops.py restorer <mnt> <rel_dir> <log> <seed> <snap_id>...
  crash-ops.py sessions <mnt> <rel_dir> <log> <seed> <nexus_bin> <data_dir> <ver_base>
  crash-ops.py gcloop   <mnt> <log> <seed> <nexus_bin> <data_dir>

File contents are a per-version pattern: the unit "<path>#<version>|" padded
with '.' to a multiple of 16 bytes, repeated and cut to the version's size. So
every committed version is recognisable, and a file that mixes two versions (or
holds a torn write) matches neither.
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import time

KIB = 1024
MIB = 1024 * 1024


def pattern(path, ver, size):
    unit = f'{path}#{ver}|'
    unit += '.' * (-len(unit) % 16)
    u = unit.encode()
    return (u * (size // len(u) + 1))[:size]


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Log:
    """One line per event, one write(2) each, O_APPEND: processes may share a log (a total order).
    Lines start with the process's tag ($CRASH_TAG, default the command)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.tag = os.environ.get('CRASH_TAG') or sys.argv[1]

    def __call__(self, *words):
        os.write(self.fd, (' '.join(str(w) for w in (self.tag,) + words) + '\n').encode())


def write_all(fd, data, rnd):
    """Sequential writes of random sizes (4 KiB .. 512 KiB)."""
    off = 0
    while off < len(data):
        n = min(len(data) - off, rnd.randint(4 * KIB, 512 * KIB))
        done = os.write(fd, data[off:off + n])
        off += done


def pick_size(rnd, max_size):
    r = rnd.random()
    if r < 0.1:
        return rnd.randint(0, 64)
    if r < 0.5:
        return rnd.randint(0, min(max_size, 256 * KIB))  # small: memory + journal
    return rnd.randint(min(max_size, 256 * KIB), max_size)  # large: staging files, several 1 MiB chunks


def writer(mnt, rel_dir, log_path, seed, ver_base, files=6, max_size=3 * MIB):
    """
    Rewrite files <rel_dir>/f<k> forever, one version at a time. Per version:
      begin <path> <ver> <size> <sha> <mode>   (before the first call)
      fsynced <path> <sha> <ver>              fsync(2) returned
      closed <path> <sha> <ver>               close(2) returned (committed)
      renamed <path> <sha> <ver>              mode atomic: tmp file written, closed, renamed over <path>
    mode trunc: open(O_TRUNC), write, maybe fsync, close.
    mode atomic: write <rel_dir>/.tmp<k>, maybe fsync, close, rename over f<k>.
    """
    rnd = random.Random(seed)
    log = Log(log_path)
    os.makedirs(os.path.join(mnt, rel_dir), exist_ok=True)
    ver = ver_base
    log('start', os.getpid())
    while True:
        ver += 1
        k = rnd.randrange(files)
        rel = f'{rel_dir}/f{k}'
        size = pick_size(rnd, max_size)
        data = pattern(rel, ver, size)
        digest = sha(data)
        mode = 'atomic' if rnd.random() < 0.3 else 'trunc'
        do_fsync = rnd.random() < 0.4
        log('begin', rel, ver, size, digest, mode)
        target = os.path.join(mnt, rel)
        if mode == 'trunc':
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            write_all(fd, data, rnd)
            if do_fsync:
                os.fsync(fd)
                log('fsynced', rel, digest, ver)
            os.close(fd)
            log('closed', rel, digest, ver)
        else:
            tmp = os.path.join(mnt, rel_dir, f'.tmp{k}')
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            write_all(fd, data, rnd)
            if do_fsync:
                os.fsync(fd)
            os.close(fd)
            os.rename(tmp, target)
            log('renamed', rel, digest, ver)
        if rnd.random() < 0.2:
            time.sleep(rnd.random() * 0.02)


def renamer(mnt, state_path, log_path, seed, counter):
    """
    Move files between directories and rename directories, forever. The state
    (which directory names exist, where each file is) comes from state.json:
      {"root": "ren", "dirs": {"0": "d0", ...}, "files": {"7": ["0", "f7"], ...}}
    Logs 'begin <op...>' before and 'done <op...>' after each rename:
      file <id> <from_dir_key> <from_name> <to_dir_key> <to_name>
      dir <key> <from_name> <to_name>
    """
    rnd = random.Random(seed)
    log = Log(log_path)
    st = json.load(open(state_path))
    root = st['root']
    dirs = st['dirs']
    files = st['files']
    log('start', os.getpid())
    while True:
        counter += 1
        if rnd.random() < 0.2:
            key = rnd.choice(sorted(dirs))
            old = dirs[key]
            new = f'{"e" if old.startswith("d") else "d"}{key}'
            op = ['dir', key, old, new]
            log('begin', *op)
            os.rename(os.path.join(mnt, root, old), os.path.join(mnt, root, new))
            dirs[key] = new
        else:
            fid = rnd.choice(sorted(files))
            fk, fname = files[fid]
            tk = rnd.choice(sorted(dirs))
            tname = f'f{fid}.{counter}'
            op = ['file', fid, fk, fname, tk, tname]
            log('begin', *op)
            os.rename(os.path.join(mnt, root, dirs[fk], fname), os.path.join(mnt, root, dirs[tk], tname))
            files[fid] = [tk, tname]
        log('done', *op)


def ctl_command(mnt, command):
    """Write one command to /.nexus/ctl and read its JSON result on the same descriptor."""
    fd = os.open(os.path.join(mnt, '.nexus', 'ctl'), os.O_RDWR)
    try:
        os.write(fd, (command + '\n').encode())
        out = b''
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            out += b
        return json.loads(out.decode())
    finally:
        os.close(fd)


def snapper(mnt, rel_dir, log_path, seed):
    """Snapshot /<rel_dir> through /.nexus/ctl forever: 'begin-snap <n>', then 'snap <n> <snapshot_id>'."""
    rnd = random.Random(seed)
    log = Log(log_path)
    log('start', os.getpid())
    n = 0
    while not stop_requested():
        n += 1
        log('begin-snap', n)
        r = ctl_command(mnt, f'snapshot /{rel_dir} n{seed}-{n}')
        if not r.get('ok'):
            log('error', json.dumps(r))
            sys.exit(1)
        log('snap', n, r['snapshot_id'])
        pause = float(os.environ.get('CRASH_SNAP_INTERVAL', '0.04'))
        time.sleep(pause * (0.25 + rnd.random() * 1.5))


def restorer(mnt, rel_dir, log_path, seed, snap_ids):
    """Restore /<rel_dir> to random snapshots through /.nexus/ctl: 'begin-restore <id>', 'restored <id> <pre_id>'."""
    rnd = random.Random(seed)
    log = Log(log_path)
    log('start', os.getpid())
    while True:
        sid = rnd.choice(snap_ids)
        log('begin-restore', sid)
        r = ctl_command(mnt, f'restore /{rel_dir} {sid}')
        if not r.get('ok'):
            log('error', json.dumps(r))
            sys.exit(1)
        log('restored', sid, r['pre_restore_snapshot_id'])
        time.sleep(rnd.random() * 0.03)


def stop_requested():
    """$CRASH_STOP_FILE exists: a loop ends cleanly (used where the test stops the workload, not the daemon)."""
    stop = os.environ.get('CRASH_STOP_FILE')
    return bool(stop) and os.path.exists(stop)


def require_mount(mnt):
    """The CLI falls back to opening the data directory itself when no daemon runs: never let it, stop instead."""
    os.stat(os.path.join(mnt, '.nexus', 'README'))  # ENOTCONN once the daemon is dead


def nexus_cli(nexus_bin, data_dir, *args):
    node = os.environ.get('NEXUS_NODE', 'node')
    return subprocess.run([node, nexus_bin, *args, '--data-dir', data_dir], capture_output=True, text=True, cwd='/')


def sessions(mnt, rel_dir, log_path, seed, nexus_bin, data_dir, ver_base):
    """
    Forever: create a session (CLI), let a child process tagged with it
    (NEXUS_SESSION) rewrite, create and delete files under <rel_dir>, then
    revert the session through the CLI. Logs:
      session <id>                 created
      begin/closed ... (the child, as writer)   deleted <path>
      child-done <id> <rc>
      begin-revert <id>, reverted <id> <rc> <json-or-error>
    """
    rnd = random.Random(seed)
    log = Log(log_path)
    log('start', os.getpid())
    ver = ver_base
    while True:
        require_mount(mnt)
        r = nexus_cli(nexus_bin, data_dir, 'session', 'create', '--agent', 'crash-agent', '--json')
        if r.returncode != 0:
            log('error', 'session-create', r.returncode, r.stderr.strip().replace('\n', ' '))
            sys.exit(1)
        sid = json.loads(r.stdout)['session_id']
        log('session', sid)
        env = dict(os.environ, NEXUS_SESSION=sid, CRASH_TAG=log.tag + '-child')
        child_seed = rnd.randrange(1 << 30)
        rc = subprocess.run([sys.executable, __file__, 'session-child', mnt, rel_dir, log_path, str(child_seed), str(ver)], env=env, cwd='/').returncode
        ver += 1000
        log('child-done', sid, rc)
        if rc != 0:
            sys.exit(1)
        require_mount(mnt)
        log('begin-revert', sid)
        r = nexus_cli(nexus_bin, data_dir, 'session', 'revert', sid, '--json')
        log('reverted', sid, r.returncode, (r.stdout if r.returncode == 0 else r.stderr).strip().replace('\n', ' '))
        if r.returncode != 0:
            sys.exit(1)


def session_child(mnt, rel_dir, log_path, seed, ver):
    """Inside a session: rewrite 2 base files, create 2 new ones, delete 1 base file (never one just rewritten)."""
    rnd = random.Random(seed)
    log = Log(log_path)
    base = sorted(n for n in os.listdir(os.path.join(mnt, rel_dir)) if n.startswith('b'))
    rewrite = rnd.sample(base, 2)
    delete = rnd.choice([b for b in base if b not in rewrite])
    todo = [('w', n) for n in rewrite] + [('c', f'new{seed % 100000}-{i}') for i in range(2)] + [('d', delete)]
    rnd.shuffle(todo)
    for kind, name in todo:
        rel = f'{rel_dir}/{name}'
        target = os.path.join(mnt, rel)
        if kind == 'd':
            log('begin-delete', rel)
            os.unlink(target)
            log('deleted', rel)
            continue
        ver += 1
        size = pick_size(rnd, 2 * MIB)
        data = pattern(rel, ver, size)
        log('begin', rel, ver, size, sha(data), 'trunc')
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        write_all(fd, data, rnd)
        os.close(fd)
        log('closed', rel, sha(data), ver)


def gcloop(mnt, log_path, seed, nexus_bin, data_dir):
    """`nexus gc --keep-versions $CRASH_GC_KEEP_VERSIONS (1) --keep-age 0s` through the daemon's socket, forever: 'begin-gc', 'gc <json>'."""
    rnd = random.Random(seed)
    log = Log(log_path)
    log('start', os.getpid())
    while not stop_requested():
        require_mount(mnt)
        log('begin-gc')
        keep = os.environ.get('CRASH_GC_KEEP_VERSIONS', '1')
        r = nexus_cli(nexus_bin, data_dir, 'gc', '--keep-versions', keep, '--keep-age', '0s', '--json')
        if r.returncode != 0:
            log('gc-failed', r.returncode, r.stderr.strip().replace('\n', ' '))
            sys.exit(1)
        log('gc', json.dumps(json.loads(r.stdout), separators=(',', ':')))
        time.sleep(rnd.random() * 0.05)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == 'writer':
            writer(args[0], args[1], args[2], int(args[3]), int(args[4]),
                   int(args[5]) if len(args) > 5 else 6, int(args[6]) if len(args) > 6 else 3 * MIB)
        elif cmd == 'renamer':
            renamer(args[0], args[1], args[2], int(args[3]), int(args[4]))
        elif cmd == 'snapper':
            snapper(args[0], args[1], args[2], int(args[3]))
        elif cmd == 'restorer':
            restorer(args[0], args[1], args[2], int(args[3]), args[4:])
        elif cmd == 'sessions':
            sessions(args[0], args[1], args[2], int(args[3]), args[4], args[5], int(args[6]))
        elif cmd == 'session-child':
            session_child(args[0], args[1], args[2], int(args[3]), int(args[4]))
        elif cmd == 'gcloop':
            gcloop(args[0], args[1], int(args[2]), args[3], args[4])
        else:
            sys.stderr.write(f'unknown command {cmd}\n')
            sys.exit(2)
    except OSError as e:
        # The daemon was killed: every call into the mount fails from now on.
        sys.stderr.write(f'{cmd}: {e}\n')
        sys.exit(3)


if __name__ == '__main__':
    main()
