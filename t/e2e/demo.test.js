// The demo page in headless Chromium: two pages (two browser contexts) on
// two different nginx workers register "alice" and "bob", each sends the
// other a chat and a notification through the page's forms, and each must
// receive the other's messages with the sender and both workers shown;
// then nginx reloads and the pages must reconnect and chat on.
//
// Run by run.sh, which starts nginx and Redis: E2E_BASE_URL (the relay),
// E2E_OUT_DIR (screenshots), CHROMIUM (the browser binary), E2E_RELOAD_CMD
// (a command that reloads that nginx; without it that part is skipped).
'use strict';

const path = require('path');
const { execSync } = require('child_process');
const { chromium } = require('playwright-core');

const base = process.env.E2E_BASE_URL || 'http://127.0.0.1:3000';
const outDir = process.env.E2E_OUT_DIR || path.join(__dirname, 'build');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10000;
const MAX_RELOADS = 20;

let passed = 0;
let failed = 0;

function check(ok, name, detail) {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name}` + (detail !== undefined ? `\n#   ${detail}` : ''));
  }
  return ok;
}

async function attempt(name, fn) {
  try {
    const detail = await fn();
    return check(true, name + (detail ? `: ${detail}` : ''));
  } catch (e) {
    return check(false, name, String(e.message || e).split('\n')[0]);
  }
}

// Opens the demo for `user`, waits for the welcome and the registration,
// returns the worker pid the page is on.
async function open(page, user, reload) {
  if (reload) await page.reload();
  else await page.goto(`${base}/demo/?user=${encodeURIComponent(user)}`);
  await page.waitForFunction(
    (u) => /^\d+$/.test(document.getElementById('process-id').textContent) &&
           document.getElementById('user-id').textContent === u,
    user, { timeout: WAIT });
  return Number(await page.textContent('#process-id'));
}

// The worker table (from GET /api/redis-info) lists `user` on worker `pid`.
async function listedOn(page, user, pid) {
  await page.waitForFunction(([u, p]) => {
    document.getElementById('refresh').click();
    for (const tr of document.querySelectorAll('#workers tr')) {
      const td = tr.querySelectorAll('td');
      if (td[0].textContent.split(' ')[0] === String(p) &&
          td[2].textContent.split(', ').includes(u)) return true;
    }
    return false;
  }, [user, pid], { timeout: WAIT, polling: 500 });
}

async function send(page, kind, target, text) {
  await page.fill('#target-user', target);
  await page.fill('#message-text', text);
  await page.click(kind === 'chat' ? '#send-chat' : '#send-notification');
}

// Waits for an incoming message of `kind` from `sender` whose body holds
// `text`, with the sender's worker filled in; returns its head line.
async function received(page, kind, sender, text) {
  const sel = `#log li.msg.in[data-type="${kind}"][data-sender="${sender}"]` +
              '[data-sender-worker]';
  const li = page.locator(sel, { hasText: text }).first();
  await li.waitFor({ timeout: WAIT });
  return (await li.locator('.head').textContent()).trim();
}

async function logged(page, text) {
  await page.locator('#log li.msg.info', { hasText: text }).first()
    .waitFor({ timeout: WAIT });
  return text;
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  const pageErrors = [];
  const pages = {};
  try {
    for (const user of ['alice', 'bob']) {
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(`${user}: console: ${m.text()}`);
      });
      pages[user] = page;
    }
    const a = pages.alice;
    const b = pages.bob;

    let pidA;
    let pidB;
    const opened = await attempt('both pages connect and register', async () => {
      [pidA, pidB] = await Promise.all([open(a, 'alice'), open(b, 'bob')]);
      return `alice on worker ${pidA}, bob on worker ${pidB}`;
    });
    if (!opened) return;

    await attempt('the page is styled', async () => {
      const radius = await a.$eval('.card', (e) => getComputedStyle(e).borderRadius);
      if (radius !== '8px') throw new Error(`.card border-radius ${radius}: no stylesheet`);
    });

    // reuseport spreads connections over the workers: reload bob's page
    // until its WebSocket lands on the other worker.
    let reloads = 0;
    while (pidB === pidA && reloads < MAX_RELOADS) {
      reloads++;
      pidB = await open(b, 'bob', true);
    }
    if (!check(pidA !== pidB, 'the pages are on different workers',
               `alice ${pidA}, bob ${pidB} after ${reloads} reloads`)) return;
    console.log(`# alice: worker ${pidA}, bob: worker ${pidB} (${reloads} reload(s))`);

    await attempt('who is online: each page lists both users on their workers', async () => {
      await Promise.all([listedOn(a, 'alice', pidA), listedOn(a, 'bob', pidB),
                         listedOn(b, 'alice', pidA), listedOn(b, 'bob', pidB)]);
    });

    await send(a, 'chat', 'bob', 'hello bob, from alice');
    await send(a, 'notification', 'bob', 'alice pings bob');
    await send(b, 'chat', 'alice', 'hi alice, bob here');
    await send(b, 'notification', 'alice', 'bob pings alice');

    const expect = [
      [b, 'bob', 'chat', 'alice', 'hello bob, from alice', pidA, pidB],
      [b, 'bob', 'notification', 'alice', 'alice pings bob', pidA, pidB],
      [a, 'alice', 'chat', 'bob', 'hi alice, bob here', pidB, pidA],
      [a, 'alice', 'notification', 'bob', 'bob pings alice', pidB, pidA],
    ];
    for (const [page, me, kind, from, text, fromPid, myPid] of expect) {
      await attempt(`${me} receives ${from}'s ${kind}`, async () => {
        const head = await received(page, kind, from, text);
        const want = `${kind} from ${from} (worker ${fromPid}) → you (worker ${myPid})`;
        if (head !== want) throw new Error(`shown "${head}", want "${want}"`);
        return head;
      });
    }

    for (const [page, me, other] of [[a, 'alice', 'bob'], [b, 'bob', 'alice']]) {
      await attempt(`${me} sees the chat delivered`, () =>
        logged(page, `chat delivered to ${other}`));
      await attempt(`${me} sees the notification delivered`, () =>
        logged(page, `notification delivered to ${other} (1 connection)`));
    }

    await attempt('a chat to a user who is not online is reported', async () => {
      await send(a, 'chat', 'nobody-here', 'anyone?');
      return logged(a, 'nobody-here is not online: chat not delivered');
    });

    for (const [user, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(outDir, `demo-${user}.png`), fullPage: true });
    }
    console.log(`# screenshots: ${outDir}/demo-alice.png, demo-bob.png`);

    // nginx -s reload: the old workers send 1001 Going Away, the pages
    // reconnect to the new workers, register again and chat on.
    let reloaded = null;
    if (process.env.E2E_RELOAD_CMD) {
      await attempt('after nginx -s reload the pages reconnect and chat', async () => {
        execSync(process.env.E2E_RELOAD_CMD, { stdio: 'inherit' });
        const back = (page, old, user) => page.waitForFunction(([o, u]) => {
          const pid = document.getElementById('process-id').textContent;
          return /^\d+$/.test(pid) && pid !== String(o) &&
                 document.getElementById('user-id').textContent === u;
        }, [old, user], { timeout: WAIT });
        await Promise.all([back(a, pidA, 'alice'), back(b, pidB, 'bob')]);
        await a.locator('#log li.msg.error', { hasText: 'code 1001' }).first()
          .waitFor({ timeout: WAIT });
        const newA = Number(await a.textContent('#process-id'));
        const newB = Number(await b.textContent('#process-id'));
        await send(a, 'chat', 'bob', 'still there after the reload?');
        const head = await received(b, 'chat', 'alice', 'still there after the reload?');
        if (!head.startsWith('chat from alice (worker ') ||
            !head.endsWith(`→ you (worker ${newB})`)) {
          throw new Error(`shown "${head}"`);
        }
        reloaded = { newA, newB, head };
        return head;
      });
      if (reloaded) {
        // The API should forget the workers that exited at once; it lists
        // them (and maps their users to them) until their Redis lease of
        // 30 s runs out.
        const ri = await a.evaluate(async () =>
          (await fetch('/api/redis-info', { cache: 'no-store' })).json());
        const stale = Object.keys(ri.processUsers || {})
          .filter((pid) => pid === String(pidA) || pid === String(pidB));
        check(stale.length === 0 && ri.userProcesses.alice === String(reloaded.newA),
             'after the reload the API lists only live workers',
             `processUsers ${JSON.stringify(ri.processUsers)}, userProcesses ` +
             `${JSON.stringify(ri.userProcesses)}; exited: ${pidA}, ${pidB}`);
      }
    }

    check(pageErrors.length === 0, 'no script errors in the pages', pageErrors.join('; '));
  } finally {
    await browser.close();
  }
}

main()
  .catch((e) => check(false, 'the test runs',
                      String(e.message || e).split('\n').slice(0, 3).join('\n#   ')))
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
  });
