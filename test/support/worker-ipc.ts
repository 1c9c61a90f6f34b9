/**
 * The worker side of `fork-worker.ts`: imported by scripts that `forkWorker` runs under tsx.
 *
 * Importing this module makes the worker exit when its parent goes away (the IPC channel
 * closes), so a crashed or killed test process leaves no worker behind. It watches
 * `process.connected` with an unref'd timer rather than a 'disconnect' listener, because a
 * listener would keep the IPC channel, and so the worker, alive after its work is done.
 *
 * tsx (esbuild) does not emit decorator metadata: Nest classes in a worker inject with explicit
 * `@Inject(Token)` (see fork-worker.ts).
 */

const PARENT_CHECK_MS = 250;

if (process.send) {
  setInterval(() => {
    if (!process.connected) process.exit(1);
  }, PARENT_CHECK_MS).unref();
}

/**
 * Sends `message` to the test that forked this worker and resolves once it is handed to the
 * channel, so `process.exit()` right after does not lose it.
 *
 * @example
 * await sendToParent({ type: 'acquired', key: 'orders' });
 *
 * @throws Error when the worker was not started with an IPC channel, or sending fails.
 */
export function sendToParent(message: unknown): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) return Promise.reject(new Error('sendToParent: no IPC channel (use forkWorker)'));
  return new Promise((resolve, reject) => {
    send(message, undefined, undefined, (error: Error | null) =>
      error ? reject(error) : resolve(),
    );
  });
}

/**
 * Resolves with the next message from the parent that `predicate` accepts, for workers that wait
 * for an instruction (`child.send(...)` in the test). A message that arrives while nobody waits
 * is dropped, so start waiting first, then tell the parent you are ready.
 *
 * @example
 * await nextParentMessage((m: { type: string }) => m.type === 'release');
 */
export function nextParentMessage<T = unknown>(
  predicate: (message: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: T): void => {
      if (!predicate(message)) return;
      process.off('message', onMessage);
      resolve(message);
    };
    process.on('message', onMessage);
  });
}
