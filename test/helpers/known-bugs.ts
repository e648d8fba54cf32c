/**
 * Tests that fail on today's code because of bugs they found, which are not
 * fixed yet. Each stays written in full and is skipped by name, loudly, so CI
 * can run the rest; the open issue lists them. Remove an entry when its bug is
 * fixed (the test then runs again).
 */
export const KNOWN_BUGS: Record<string, string> = {
  // fsck reporting and repair (issue 6)
  // gc (issue 6)
  // crash recovery (issue 6)
  // full disk (issue 6)
  // the differential tester (mount vs native directory): libfuse 2.9 high-level API limits, issue 3
  'seed 1: 150 random ops, equal results, trees and descriptors after every step': 'see the regressions below',
  'seed 2: 150 random ops, equal results, trees and descriptors after every step': 'see the regressions below',
  'seed 3: 300 random ops, equal results after every step, trees and descriptors after one step in ten': 'see the regressions below',
  'regression: fstat on a descriptor open across a restore that removed its file': 'libfuse 2.9 answers ENOENT for fstat of a node without a name',
  'regression: a descriptor open across a restore that replaced its file sees one file, not two': 'restore replaces inodes; an open descriptor keeps the old one',
  'regression: a write through one hard link is seen by a descriptor open on another': 'page cache per libfuse node id: hard links are separate nodes',
  'regression: a truncate through one hard link is seen by a descriptor open on another': 'page cache per libfuse node id: hard links are separate nodes',
  'regression: unlinking an open file: no .fuse_hidden name, and fstat on its descriptor still works': 'libfuse 2.9 answers ENOENT for fstat of a node without a name',
  'regression: unlinking one hard link of an open file: no .fuse_hidden name, the right link count, fstat still works': 'libfuse 2.9 answers ENOENT for fstat of a node without a name',
  'regression: renaming over an open file: no .fuse_hidden name, and fstat on its descriptor still works': 'libfuse 2.9 answers ENOENT for fstat of a node without a name',
};

const announced = new Set<string>();

export function isKnownBug(title: string): boolean {
  const why = KNOWN_BUGS[title];
  if (why && !announced.has(title)) {
    announced.add(title);
    console.warn(`\n*** KNOWN BUG, test skipped: "${title}"\n    (${why}; see the open issue)\n`);
  }
  return why !== undefined;
}
