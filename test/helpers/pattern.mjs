/**
 * The content of version `ver` of `path`, byte for byte the same as
 * crash-ops.py's pattern: a test knows what a file must hold from its name
 * and version alone. Plain JavaScript so child processes (crash-point-child.mjs)
 * use the same function as the tests.
 */
export function pattern(path, ver, size) {
  let unit = `${path}#${ver}|`;
  unit += '.'.repeat((16 - (unit.length % 16)) % 16);
  const u = Buffer.from(unit);
  const out = Buffer.allocUnsafe(size);
  for (let off = 0; off < size; off += u.length) u.copy(out, off, 0, Math.min(u.length, size - off));
  return out;
}
