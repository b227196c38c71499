/**
 * @file Starts the real `task-http` binary for a test: a fresh SQLite database in a temporary
 * folder, an OS-chosen port on 127.0.0.1, and users created with `task-http user add`.
 */

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

/** The repository root (tests/browser/lib -> ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The binary under test: `TASKLANE_BIN`, or the debug build `run.sh` makes. */
export const BINARY = process.env.TASKLANE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'task-http');

const STARTUP_TIMEOUT_MS = 30_000;
const LISTENING = /tasklane listening.*?addr\W+(\d+\.\d+\.\d+\.\d+:\d+)/;

/**
 * @typedef {{
 *   baseUrl: string,
 *   addUser: (email: string, options?: { superuser?: boolean }) => Promise<string>,
 *   logs: () => string,
 *   stop: () => Promise<void>,
 * }} TestServer
 */

/**
 * Starts a server. `args` are extra `serve` flags; `env` extra environment (the offline
 * provider's delay defaults to 50 ms per step so progress is visible but quick); `seed` runs
 * on the migrated database file before the server starts (to fill it directly, fast).
 * @param {{ args?: string[], env?: Record<string, string>, seed?: (db: string) => Promise<void> }} [options]
 * @returns {Promise<TestServer>}
 */
export async function startServer(options = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tasklane-browser-'));
  const db = path.join(dir, 'tasklane.db');
  const env = {
    ...withoutProviderKeys(process.env),
    RUST_LOG: process.env.RUST_LOG || 'info',
    TASKLANE_OFFLINE_DELAY_MS: '50',
    ...options.env,
    // Settings go through the environment twins of the flags, which every subcommand reads.
    TASKLANE_DB: db,
    TASKLANE_LOG_FORMAT: 'json',
  };
  // Users first, so `serve` finds a non-empty database and creates no admin of its own.
  const addUser = async (/** @type {string} */ email, /** @type {{ superuser?: boolean }} */ { superuser = false } = {}) => {
    const { stdout } = await run(BINARY, ['user', 'add', email, ...(superuser ? ['--superuser'] : [])], { env });
    const lines = stdout.trim().split('\n');
    return lines[lines.length - 1].trim();
  };
  await addUser('bootstrap@tasklane.test');
  if (options.seed) await options.seed(db);

  const child = spawn(BINARY, ['--addr', '127.0.0.1:0', '--test-tasks', ...(options.args || [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`task-http did not start within ${STARTUP_TIMEOUT_MS} ms:\n${output}`)), STARTUP_TIMEOUT_MS);
    const onData = (/** @type {Buffer} */ chunk) => {
      output += chunk.toString();
      const match = LISTENING.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(`http://${match[1]}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`task-http exited with ${code} before listening:\n${output}`));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));

  return {
    baseUrl,
    addUser,
    logs: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment without AI provider keys or endpoints, so no test can reach a real provider
 * (and `openai` reliably fails with "API key not configured").
 * @param {NodeJS.ProcessEnv} env
 */
function withoutProviderKeys(env) {
  return Object.fromEntries(
    Object.entries(env).filter(([name]) => !/^(OPENAI|ANTHROPIC|GEMINI|OPENAI_COMPATIBLE)_/.test(name)),
  );
}
