/**
 * @file The client's hand-written declarations (`index.d.ts`, `react.d.ts`) agree with the
 * JavaScript: TypeScript checks the client's and the pages' JSDoc against them, and compiles a
 * TypeScript consumer (`types/consumer.ts`) against them.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

it('the JS and the .d.ts files type-check together (tsc --checkJs, strict)', async () => {
  const tsc = path.join(here, 'node_modules', 'typescript', 'bin', 'tsc');
  const { code, output } = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.json')], { cwd: here }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, output: `${stdout}${stderr}` });
    });
  });
  assert.equal(code, 0, `tsc reported:\n${output}`);
});
