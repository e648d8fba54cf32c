/**
 * Run `fn` in a transaction of `db` (a savepoint when one is already open).
 * better-sqlite3's `db.transaction(fn)` builds a new wrapper (with its
 * deferred/immediate/exclusive variants) on every call: 4% of the engine's
 * CPU when it writes 10,000 small files (native-notes/io-costs.md). One
 * wrapper per connection, taking the body as its argument, does the same work.
 */
import type Database from 'better-sqlite3';

const wrappers = new WeakMap<Database.Database, (body: () => unknown) => unknown>();

export function inTransaction<T>(db: Database.Database, body: () => T): T {
  let run = wrappers.get(db);
  if (!run) {
    run = db.transaction((b: () => unknown) => b());
    wrappers.set(db, run);
  }
  return run(body) as T;
}
