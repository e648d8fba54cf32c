/**
 * Conformance: bad input and failing operations. Every case checks the
 * errno and that the failed operation left the tree exactly as it was.
 * Same assertions on every adapter; native (Linux) is the reference.
 */
import { describe, expect, it } from 'vitest';
import { ADAPTERS, O, type FsUnderTest } from './fs-under-test.js';
import { expectFailsCleanly, useFs } from './harness.js';

/** A small tree every case starts from. */
async function populate(fs: FsUnderTest): Promise<void> {
  await fs.mkdir('/d');
  await fs.mkdir('/d/sub');
  await fs.mkdir('/empty');
  await fs.writeFile('/f', 'file content');
  await fs.writeFile('/d/g', 'inner');
  await fs.symlink('f', '/lf');
  await fs.symlink('d', '/ld');
}

type Case = [label: string, op: (fs: FsUnderTest) => Promise<unknown>, errno: string];

function cases(list: Case[]) {
  return list;
}

const LONG = 'n'.repeat(256);
const LONG_MB = 'é'.repeat(128); // 256 bytes in UTF-8, 128 characters

const EMPTY_PATH = cases([
  ['stat("")', (fs) => fs.stat(''), 'ENOENT'],
  ['lstat("")', (fs) => fs.lstat(''), 'ENOENT'],
  ['mkdir("")', (fs) => fs.mkdir(''), 'ENOENT'],
  ['mkdir -p ""', (fs) => fs.mkdir('', 0o777, { recursive: true }), 'ENOENT'],
  ['open("", O_CREAT)', (fs) => fs.open('', O.WRONLY | O.CREAT), 'ENOENT'],
  ['writeFile("")', (fs) => fs.writeFile('', 'x'), 'ENOENT'],
  ['unlink("")', (fs) => fs.unlink(''), 'ENOENT'],
  ['rmdir("")', (fs) => fs.rmdir(''), 'ENOENT'],
  ['rename("", /x)', (fs) => fs.rename('', '/x'), 'ENOENT'],
  ['rename(/f, "")', (fs) => fs.rename('/f', ''), 'ENOENT'],
  ['symlink(t, "")', (fs) => fs.symlink('t', ''), 'ENOENT'],
]);

const NAME_TOO_LONG = cases([
  ['writeFile 256-byte name', (fs) => fs.writeFile(`/${LONG}`, 'x'), 'ENAMETOOLONG'],
  ['writeFile 256-byte UTF-8 name', (fs) => fs.writeFile(`/${LONG_MB}`, 'x'), 'ENAMETOOLONG'],
  ['open O_CREAT 256-byte name', (fs) => fs.open(`/d/${LONG}`, O.WRONLY | O.CREAT), 'ENAMETOOLONG'],
  ['mkdir 256-byte name', (fs) => fs.mkdir(`/${LONG}`), 'ENAMETOOLONG'],
  ['rename to a 256-byte name', (fs) => fs.rename('/f', `/${LONG}`), 'ENAMETOOLONG'],
  ['link to a 256-byte name', (fs) => fs.link('/f', `/${LONG}`), 'ENAMETOOLONG'],
  ['symlink at a 256-byte name', (fs) => fs.symlink('f', `/${LONG}`), 'ENAMETOOLONG'],
  ['stat a 256-byte component', (fs) => fs.stat(`/${LONG}/x`), 'ENAMETOOLONG'],
  ['unlink a 256-byte name', (fs) => fs.unlink(`/${LONG}`), 'ENAMETOOLONG'],
]);

const NUL = cases([
  ['writeFile with NUL', (fs) => fs.writeFile('/a\0b', 'x'), 'EINVAL'],
  ['mkdir with NUL', (fs) => fs.mkdir('/a\0b'), 'EINVAL'],
  ['rename to a name with NUL', (fs) => fs.rename('/f', '/a\0b'), 'EINVAL'],
  ['stat with NUL', (fs) => fs.stat('/f\0'), 'EINVAL'],
  ['symlink at a name with NUL', (fs) => fs.symlink('f', '/a\0b'), 'EINVAL'],
]);

const DOTS = cases([
  ['mkdir /d/.', (fs) => fs.mkdir('/d/.'), 'EEXIST'],
  ['mkdir /d/..', (fs) => fs.mkdir('/d/..'), 'EEXIST'],
  ['rmdir /empty/.', (fs) => fs.rmdir('/empty/.'), 'EINVAL'],
  ['rmdir /d/..', (fs) => fs.rmdir('/d/..'), 'ENOTEMPTY'],
  ['unlink /d/.', (fs) => fs.unlink('/d/.'), 'EISDIR'],
  ['unlink /d/..', (fs) => fs.unlink('/d/..'), 'EISDIR'],
  ['rename /empty/. -> /e2', (fs) => fs.rename('/empty/.', '/e2'), 'EBUSY'],
  ['rename /d/sub/.. -> /e2', (fs) => fs.rename('/d/sub/..', '/e2'), 'EBUSY'],
  ['rename /f -> /empty/.', (fs) => fs.rename('/f', '/empty/.'), 'EBUSY'],
  ['rename /f -> /d/..', (fs) => fs.rename('/f', '/d/..'), 'EBUSY'],
  ['rename /empty -> /d/.', (fs) => fs.rename('/empty', '/d/.'), 'EBUSY'],
  ['open /d/. O_CREAT', (fs) => fs.open('/d/.', O.WRONLY | O.CREAT), 'EISDIR'],
  ['open /d/.. O_CREAT', (fs) => fs.open('/d/..', O.WRONLY | O.CREAT), 'EISDIR'],
  ['link /f -> /d/.', (fs) => fs.link('/f', '/d/.'), 'EEXIST'],
  ['link /f -> /d/..', (fs) => fs.link('/f', '/d/..'), 'EEXIST'],
  ['symlink at /d/.', (fs) => fs.symlink('x', '/d/.'), 'EEXIST'],
  ['symlink at /d/..', (fs) => fs.symlink('x', '/d/..'), 'EEXIST'],
]);

const THROUGH_A_FILE = cases([
  ['stat /f/x', (fs) => fs.stat('/f/x'), 'ENOTDIR'],
  ['stat /f/ (trailing slash on a file)', (fs) => fs.stat('/f/'), 'ENOTDIR'],
  ['open /f/ (trailing slash on a file)', (fs) => fs.open('/f/', O.RDONLY), 'ENOTDIR'],
  ['unlink /f/ (trailing slash on a file)', (fs) => fs.unlink('/f/'), 'ENOTDIR'],
  ['stat /lf/x (through a link to a file)', (fs) => fs.stat('/lf/x'), 'ENOTDIR'],
  ['writeFile /f/x', (fs) => fs.writeFile('/f/x', 'x'), 'ENOTDIR'],
  ['open /f/x O_CREAT', (fs) => fs.open('/f/x', O.WRONLY | O.CREAT), 'ENOTDIR'],
  ['mkdir /f/x', (fs) => fs.mkdir('/f/x'), 'ENOTDIR'],
  ['unlink /f/x', (fs) => fs.unlink('/f/x'), 'ENOTDIR'],
  ['rmdir /f/x', (fs) => fs.rmdir('/f/x'), 'ENOTDIR'],
  ['rename /f/x -> /y', (fs) => fs.rename('/f/x', '/y'), 'ENOTDIR'],
  ['rename /d/g -> /f/x', (fs) => fs.rename('/d/g', '/f/x'), 'ENOTDIR'],
  ['link /d/g -> /f/x', (fs) => fs.link('/d/g', '/f/x'), 'ENOTDIR'],
  ['symlink at /f/x', (fs) => fs.symlink('t', '/f/x'), 'ENOTDIR'],
  ['readdir /f', (fs) => fs.readdir('/f'), 'ENOTDIR'],
  ['chmod /f/x', (fs) => fs.chmod('/f/x', 0o600), 'ENOTDIR'],
  ['truncate /f/x', (fs) => fs.truncate('/f/x', 0), 'ENOTDIR'],
]);

const MISSING = cases([
  ['stat', (fs) => fs.stat('/nope'), 'ENOENT'],
  ['lstat', (fs) => fs.lstat('/nope'), 'ENOENT'],
  ['stat in a missing dir', (fs) => fs.stat('/nodir/x'), 'ENOENT'],
  ['readFile', (fs) => fs.readFile('/nope'), 'ENOENT'],
  ['open without O_CREAT', (fs) => fs.open('/nope', O.RDWR), 'ENOENT'],
  ['open O_CREAT in a missing dir', (fs) => fs.open('/nodir/x', O.WRONLY | O.CREAT), 'ENOENT'],
  ['writeFile in a missing dir', (fs) => fs.writeFile('/nodir/x', 'x'), 'ENOENT'],
  ['mkdir in a missing dir', (fs) => fs.mkdir('/nodir/x'), 'ENOENT'],
  ['unlink', (fs) => fs.unlink('/nope'), 'ENOENT'],
  ['rmdir', (fs) => fs.rmdir('/nope'), 'ENOENT'],
  ['rename a missing source', (fs) => fs.rename('/nope', '/x'), 'ENOENT'],
  ['rename into a missing dir', (fs) => fs.rename('/f', '/nodir/x'), 'ENOENT'],
  ['link a missing source', (fs) => fs.link('/nope', '/x'), 'ENOENT'],
  ['symlink in a missing dir', (fs) => fs.symlink('t', '/nodir/x'), 'ENOENT'],
  ['readlink', (fs) => fs.readlink('/nope'), 'ENOENT'],
  ['truncate', (fs) => fs.truncate('/nope', 0), 'ENOENT'],
  ['chmod', (fs) => fs.chmod('/nope', 0o600), 'ENOENT'],
  ['chown', (fs) => fs.chown('/nope', 1, 1), 'ENOENT'],
  ['utimes', (fs) => fs.utimes('/nope', 1_000_000_000_000_000_000n, 1_000_000_000_000_000_000n), 'ENOENT'],
  ['readdir', (fs) => fs.readdir('/nope'), 'ENOENT'],
]);

const EXISTS_AND_TYPES = cases([
  ['open O_CREAT|O_EXCL on an existing file', (fs) => fs.open('/f', O.WRONLY | O.CREAT | O.EXCL), 'EEXIST'],
  ['open O_CREAT|O_EXCL on an existing dir', (fs) => fs.open('/d', O.WRONLY | O.CREAT | O.EXCL), 'EEXIST'],
  ['open O_CREAT|O_EXCL on a symlink to a file', (fs) => fs.open('/lf', O.WRONLY | O.CREAT | O.EXCL), 'EEXIST'],
  ['mkdir over a file', (fs) => fs.mkdir('/f'), 'EEXIST'],
  ['symlink over a dir', (fs) => fs.symlink('x', '/d'), 'EEXIST'],
  ['link over a file', (fs) => fs.link('/f', '/d/g'), 'EEXIST'],
  ['rmdir of a file', (fs) => fs.rmdir('/f'), 'ENOTDIR'],
  ['rmdir of a symlink to a dir', (fs) => fs.rmdir('/ld'), 'ENOTDIR'],
  ['rmdir of a non-empty dir', (fs) => fs.rmdir('/d'), 'ENOTEMPTY'],
  ['unlink of a dir', (fs) => fs.unlink('/d'), 'EISDIR'],
  ['unlink of an empty dir', (fs) => fs.unlink('/empty'), 'EISDIR'],
  ['open a dir O_WRONLY', (fs) => fs.open('/d', O.WRONLY), 'EISDIR'],
  ['open a dir O_RDWR|O_CREAT', (fs) => fs.open('/d', O.RDWR | O.CREAT), 'EISDIR'],
  ['open a dir O_RDWR|O_TRUNC', (fs) => fs.open('/d', O.RDWR | O.TRUNC), 'EISDIR'],
  ['rename a file over a dir', (fs) => fs.rename('/f', '/empty'), 'EISDIR'],
  ['rename a dir over a file', (fs) => fs.rename('/empty', '/f'), 'ENOTDIR'],
  ['rename a dir over a non-empty dir', (fs) => fs.rename('/empty', '/d'), 'ENOTEMPTY'],
  ['rename a dir into itself', (fs) => fs.rename('/d', '/d/sub/x'), 'EINVAL'],
  ['link a dir', (fs) => fs.link('/d', '/d2'), 'EPERM'],
  ['readlink of a file', (fs) => fs.readlink('/f'), 'EINVAL'],
]);

describe.each(ADAPTERS)('bad input [$name]', (adapter) => {
  // Many small cases: one file system per group, emptied before each case.
  const fs = useFs(adapter, { reuse: true });

  const groups: [string, Case[]][] = [
    ['empty path', EMPTY_PATH],
    ['name of 256 bytes', NAME_TOO_LONG],
    ['NUL in a name', NUL],
    ['. and .. as the last component', DOTS],
    ['a path through a file', THROUGH_A_FILE],
    ['missing paths', MISSING],
    ['existing names and wrong types', EXISTS_AND_TYPES],
  ];
  for (const [group, list] of groups) {
    describe(group, () => {
      it.each(list.map(([label, op, errno]) => ({ label, op, errno })))('$label -> $errno', async ({ label, op, errno }) => {
        await populate(fs());
        await expectFailsCleanly(fs(), () => op(fs()), errno, label);
      });
    });
  }

  it('a name of exactly 255 bytes works', async () => {
    await populate(fs());
    const name = 'n'.repeat(255);
    await fs().writeFile(`/${name}`, 'ok');
    await fs().mkdir(`/d/${name}`);
    await fs().rename(`/${name}`, `/d/${name}/${name}`);
    expect((await fs().readFile(`/d/${name}/${name}`)).toString()).toBe('ok');
  });
});
