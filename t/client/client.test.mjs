// The client library (client/ws-relay-client.js) against nginx and Redis:
// the scenarios of scenarios.mjs in Node (with the "ws" package) and in
// headless Chromium (the page imports the library from the server, as the
// demo does); in Node also the use of a global WebSocket, and the
// TypeScript declarations against the module and under tsc.
//
// Run by run.sh, which starts nginx and Redis: CLIENT_BASE_URL (the
// relay), CLIENT_RELOAD_CMD (reloads that nginx), CHROMIUM (the browser
// binary).  Prints "ok - ..." per check and "N passed, N failed".

import { execFileSync, execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import * as lib from '../../client/ws-relay-client.js';
import { scenarios } from './scenarios.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const top = join(here, '..', '..');
const base = process.env.CLIENT_BASE_URL || 'http://127.0.0.1:3000';
const url = base.replace(/^http/, 'ws') + '/';
const reload = () => execSync(process.env.CLIENT_RELOAD_CMD, { stdio: 'inherit' });

let passed = 0;
let failed = 0;

function ok(cond, name, detail) {
  if (cond) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name}` + (detail ? `\n#   ${String(detail).slice(0, 2000)}` : ''));
  }
}

const runId = Date.now().toString(36);

// --- Node -------------------------------------------------------------------

async function node() {
  const env = {
    url, WebSocket, reload, prefix: `node-${runId}-`,
    kill: (socket) => socket.terminate(),
  };
  for (const [name, run] of Object.entries(scenarios)) {
    const t = { ok: (cond, check, detail) => ok(cond, `node: ${check}`, detail) };
    try {
      await run(lib, env, t);
    } catch (e) {
      ok(false, `node: ${name}`, e.stack);
    }
  }

  // the global WebSocket, when there is one (Node 22), and none
  const saved = globalThis.WebSocket;
  try {
    globalThis.WebSocket = class extends WebSocket {};
    const c = lib.connect(url, { userId: `node-${runId}-global` });
    await c.ready();
    const pong = await c.ping();
    await c.close();
    delete globalThis.WebSocket;
    let refused = null;
    try {
      lib.connect(url, {});
    } catch (e) {
      refused = e;
    }
    ok(pong.type === 'pong' && refused instanceof TypeError,
       'node: without options.WebSocket the global one is used; with neither, a TypeError',
       String(refused));
  } finally {
    globalThis.WebSocket = saved;
  }
}

// --- TypeScript declarations -----------------------------------------------

function declarations() {
  const dts = readFileSync(join(top, 'client', 'ws-relay-client.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:function|class|type|interface) (\w+)/gm)]
    .map((m) => m[1]);
  const values = Object.keys(lib).sort();
  const missing = values.filter((n) => !declared.includes(n));
  ok(missing.length === 0, 'the declarations name every export of the module',
     `not declared: ${missing.join(', ')}`);
  const methods = Object.getOwnPropertyNames(lib.RelayClient.prototype)
    .filter((n) => n !== 'constructor');
  const undeclared = methods.filter((m) => !new RegExp(`\\b${m}\\b`).test(dts));
  ok(undeclared.length === 0, 'the declarations name every method and getter of RelayClient',
     `not declared: ${undeclared.join(', ')}`);
  for (const [what, lib] of [['without DOM types', 'es2022'], ['with DOM types', 'es2022,dom']]) {
    try {
      execFileSync(process.execPath, [join(here, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
        '--moduleResolution', 'nodenext', '--lib', lib,
        join(here, 'types.check.ts')], { stdio: 'pipe' });
      ok(true, `tsc --noEmit --strict: a program using the declarations compiles, ${what}`);
    } catch (e) {
      ok(false, `tsc --noEmit --strict: a program using the declarations compiles, ${what}`,
         String(e.stdout || e.message));
    }
  }
}

// --- Chromium ---------------------------------------------------------------

async function browser() {
  const b = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  try {
    const page = await b.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
    // the scenarios, as this file has them; the library comes from nginx
    await page.route(`${base}/test/scenarios.mjs`, (route) => route.fulfill({
      contentType: 'text/javascript', body: readFileSync(join(here, 'scenarios.mjs'), 'utf8'),
    }));
    await page.exposeFunction('relayReload', reload);
    const res = await page.goto(`${base}/client/ws-relay-client.js`);
    ok(res.status() === 200 && /^text\/javascript/.test(res.headers()['content-type']),
       'chromium: nginx serves /client/ws-relay-client.js as JavaScript',
       `${res.status()} ${res.headers()['content-type']}`);
    for (const name of Object.keys(scenarios)) {
      const result = await page.evaluate(async ([name, url, prefix]) => {
        const lib = await import('/client/ws-relay-client.js');
        const { scenarios } = await import('/test/scenarios.mjs');
        const checks = [];
        const env = { url, prefix, WebSocket, reload: () => window.relayReload() };
        const t = { ok: (ok, check, detail) => checks.push({ ok: !!ok, check, detail }) };
        try {
          await scenarios[name](lib, env, t);
        } catch (e) {
          checks.push({ ok: false, check: name, detail: String(e.stack || e) });
        }
        return checks;
      }, [name, url, `chromium-${runId}-`]);
      for (const c of result) ok(c.ok, `chromium: ${c.check}`, c.detail);
    }
    ok(errors.length === 0, 'chromium: no script errors in the page', errors.join('; '));
  } finally {
    await b.close();
  }
}

try {
  declarations();
  await node();
  await browser();
} catch (e) {
  ok(false, 'the test runs', e.stack);
} finally {
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}
