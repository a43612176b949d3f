/** A bounded FIFO ring buffer: `push` drops and returns the oldest item when full. */
export class RingQueue<T> {
  private buf: (T | undefined)[];
  private head = 0;
  private len = 0;

  constructor(readonly capacity: number) {
    this.buf = new Array<T | undefined>(Math.min(capacity, 1024));
  }

  get length(): number {
    return this.len;
  }

  /** Appends `item`; when the queue is full the oldest item is removed and returned. */
  push(item: T): T | undefined {
    let dropped: T | undefined;
    if (this.len === this.capacity) {
      dropped = this.buf[this.head];
      this.buf[this.head] = undefined;
      this.head = (this.head + 1) % this.buf.length;
      this.len--;
    } else if (this.len === this.buf.length) {
      this.grow();
    }
    this.buf[(this.head + this.len) % this.buf.length] = item;
    this.len++;
    return dropped;
  }

  /** Removes and returns up to `n` items from the front. */
  take(n: number): T[] {
    const k = Math.min(n, this.len);
    const out = new Array<T>(k);
    for (let i = 0; i < k; i++) {
      out[i] = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = (this.head + 1) % this.buf.length;
    }
    this.len -= k;
    if (this.len === 0) this.head = 0;
    return out;
  }

  /** The front item, not removed. */
  peek(): T | undefined {
    return this.len > 0 ? this.buf[this.head] : undefined;
  }

  private grow(): void {
    const size = Math.min(this.capacity, this.buf.length * 2);
    const next = new Array<T | undefined>(size);
    for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }
}
