/** A tiny FIFO async mutex, plus a keyed set of them. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export class KeyedMutex<K> {
  private readonly locks = new Map<K, { mutex: Mutex; users: number }>();

  async run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    let entry = this.locks.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.locks.set(key, entry);
    }
    entry.users++;
    try {
      return await entry.mutex.run(fn);
    } finally {
      if (--entry.users === 0) this.locks.delete(key);
    }
  }
}

/**
 * Many shared holders or one exclusive holder; waiting exclusive requests
 * block new shared ones, so the exclusive side is not starved.
 */
export class RwGate {
  private shared = 0;
  private exclusive = false;
  private waitingExclusive = 0;
  private readonly waiters: (() => void)[] = [];

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }

  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive || this.waitingExclusive > 0) await new Promise<void>((r) => this.waiters.push(r));
    this.shared++;
    try {
      return await fn();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.waitingExclusive++;
    while (this.exclusive || this.shared > 0) await new Promise<void>((r) => this.waiters.push(r));
    this.waitingExclusive--;
    this.exclusive = true;
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }
}
