/**
 * Tests that fail on today's code because of bugs they found, which are not
 * fixed yet. Each stays written in full and is skipped by name, loudly, so CI
 * can run the rest; the open issue lists them. Remove an entry when its bug is
 * fixed (the test then runs again).
 */
export const KNOWN_BUGS: Record<string, string> = {
  // fsck reporting and repair (issue 6)
  'says which files damaged blobs and bad rows belong to (not only blob ids and inode numbers)': 'fsck prints blob ids and inode numbers, not paths',
  'a link count of 0 on a file that still has its name: fsck reports it and nothing is lost (not dropped as an orphan on open)': 'fsck does not report nlink 0 with a name',
  'a version row deleted that a file names: reported with the file, and --repair moves the file to /lost+found as damaged instead of leaving it empty in place': 'repair empties the file instead of moving it aside',
  'a corrupt meta.db (first page overwritten, header included): nexus fsck explains what is wrong (without sending the user to nexus fsck)': 'SQLite corruption is not mapped to CORRUPT everywhere',
  'a corrupt meta.db (pages 2 and 3 overwritten, header intact): nexus status refuses in one line and changes nothing': 'SQLite corruption is not mapped to CORRUPT everywhere',
  'a corrupt meta.db (pages 2 and 3 overwritten, header intact): nexus mount refuses in one line and nothing is mounted': 'SQLite corruption is not mapped to CORRUPT everywhere',
  'a corrupt meta.db (pages 2 and 3 overwritten, header intact): nexus fsck explains what is wrong (without sending the user to nexus fsck)': 'SQLite corruption is not mapped to CORRUPT everywhere',
  // gc (issue 6)
  // crash recovery (issue 6)
  '(c) snapshots through /.nexus/ctl in a loop while a writer works: every logged snapshot survives and holds only whole committed versions': 'a snapshot during a rewrite after a crash: to investigate',
  'between creating a staging meta file and writing it: the data directory still opens, the file is old or truncated, fsck is clean': 'recovery of a truncate whose meta was never written',
  "a session's staged, uncommitted writes survive the kill and still belong to it: reverting the session undoes them": 'recovery commits without the writer\'s session',
  'a session that closed a file and was rewriting it at the kill reverts without --force': 'recovery commits without the writer\'s session',
  'a session revert killed half way completes when run again (its own partial work is no conflict)': 'revert is not resumable',
  '(e) sessions reverted with the CLI: after a crash the interrupted session still reverts (without --force) to exactly the tree before it': 'flaky: recovery commits without the writer\'s session; revert is not resumable',
  // full disk (issue 6)
  'writes fail with ENOSPC, earlier data stays readable, fsck is consistent, and space comes back after deletes': 'space is not reliably reclaimed after deletes on a full disk',
  'a daemon stopped while the disk is full and a write is pending exits cleanly, and a restart with room recovers everything': 'shutdown with the disk full and a commit pending',
  // the differential tester (mount vs native directory; issues 3 and 6)
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
