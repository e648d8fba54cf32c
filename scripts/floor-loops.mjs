// The python loops both FUSE floor scripts drive a mount with (scripts/fuse-floor.mjs,
// scripts/raw-fuse-floor.mjs) and bench/mount's small-file phases mirror: create 4 KiB
// files, stat, read, unlink. Run as `python3 -c PY <dir> <files> <phase>`; prints
// "<phase> <files per second>".
export const PY = `
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
os.makedirs(root, exist_ok=True)
def phase(name, fn):
    t = time.perf_counter(); fn(); d = time.perf_counter() - t
    print(name, round(n / d))
def create():
    for i in range(n):
        fd = os.open(f"{root}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data); os.close(fd)
def stat():
    for i in range(n): os.stat(f"{root}/f{i}")
def read():
    for i in range(n):
        with open(f"{root}/f{i}", "rb") as f: f.read()
def unlink():
    for i in range(n): os.unlink(f"{root}/f{i}")
phase(sys.argv[3], globals()[sys.argv[3]])
`
