/**
 * Connects to the Redis URL given as first argument, sends PING and reports the reply to the
 * parent as `{ type: 'pong', reply, pid }`, or `{ type: 'error', message }`.
 */
import { Redis } from 'ioredis';
import { sendToParent } from '../worker-ipc.js';

const [url] = process.argv.slice(2);
const redis = new Redis(url, { maxRetriesPerRequest: 1 });
try {
  const reply = await redis.ping();
  await sendToParent({ type: 'pong', reply, pid: process.pid });
} catch (error) {
  await sendToParent({
    type: 'error',
    message: error instanceof Error ? error.message : String(error),
  });
} finally {
  redis.disconnect();
}
process.exit(0);
