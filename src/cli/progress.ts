/** Progress for long operations: a live line on a TTY, nothing otherwise. */
export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total ? Math.floor((done / total) * 100) : 100;
      stream.write(`\r${label}: ${done}/${total} (${pct}%)`);
    },
    done() {
      stream.write('\r\x1b[K');
    },
  };
}
