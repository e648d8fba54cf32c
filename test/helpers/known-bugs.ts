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
  // (fstat of a file without a name works since fuse-native patch version 10; seed 1 passes since)
  'seed 2: 150 random ops, equal results, trees and descriptors after every step': 'see the regressions below',
  'seed 3: 300 random ops, equal results after every step, trees and descriptors after one step in ten': 'see the regressions below',
  'regression: a descriptor open across a restore that replaced its file sees one file, not two': 'restore replaces inodes; an open descriptor keeps the old one',
  'regression: a write through one hard link is seen by a descriptor open on another': 'page cache per libfuse node id: hard links are separate nodes',
  'regression: a truncate through one hard link is seen by a descriptor open on another': 'page cache per libfuse node id: hard links are separate nodes',
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
