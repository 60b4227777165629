// The demo page in headless Chromium: two pages (two browser contexts) on
// two different nginx workers register "alice" and "bob", each sends the
// other a chat and a notification through the page's forms, and each must
// receive the other's messages with the sender and both workers shown;
// then nginx reloads and the pages must reconnect and chat on.  A page
// whose connections are closed reconnects by itself, waiting longer each
// time, and not after Disconnect.
//
// With the example's message history: a page closed while another sends to
// its user, then opened again in the same browser, shows what it missed, in
// order and once; a page open across a reload, while the other keeps
// sending, reconnects by itself and misses nothing, doubles nothing; copies
// of a message (the same id) are shown once.
//
// Run by run.sh, which starts nginx and Redis: E2E_BASE_URL (the relay),
// E2E_OUT_DIR (screenshots), CHROMIUM (the browser binary), E2E_RELOAD_CMD
// (a command that reloads that nginx; without it those parts are skipped),
// E2E_HISTORY (off: the server keeps no history; its cases are skipped).
'use strict';

const path = require('path');
const { execSync } = require('child_process');
const { chromium } = require('playwright-core');

const base = process.env.E2E_BASE_URL || 'http://127.0.0.1:3000';
const outDir = process.env.E2E_OUT_DIR || path.join(__dirname, 'build');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10000;
// after a reload: ws_relay_drain (10 s) spreads the closes, then the
// page's reconnect backoff
const RELOAD_WAIT = 30000;
const MAX_RELOADS = 20;
const HISTORY = process.env.E2E_HISTORY !== 'off';

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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A page in a browser context of its own (its own storage) or in `ctx`;
// script errors and console errors go to `errors`.
async function newPage(browser, user, errors, ctx) {
  const context = ctx || await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${user}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${user}: console: ${m.text()}`);
  });
  return page;
}

// Until the page is connected again, to a worker other than `old`, as `user`.
async function back(page, old, user) {
  await page.waitForFunction(([o, u]) => {
    const pid = document.getElementById('process-id').textContent;
    return /^\d+$/.test(pid) && pid !== String(o) &&
           document.getElementById('user-id').textContent === u;
  }, [old, user], { timeout: RELOAD_WAIT });
  return Number(await page.textContent('#process-id'));
}

// Sends through the page's form at once if the page is connected and
// registered as `me`; true when the page sent it.
async function sendNow(page, me, kind, target, text) {
  return page.evaluate(([m, k, t, x]) => {
    const $ = (id) => document.getElementById(id);
    if ($('status').dataset.state !== 'open' || $('user-id').textContent !== m) return false;
    const out = () => document.querySelectorAll('#log li.msg.out').length;
    const before = out();
    $('target-user').value = t;
    $('message-text').value = x;
    $(k === 'chat' ? 'send-chat' : 'send-notification').click();
    return out() > before;
  }, [me, kind, target, text]);
}

// The messages from `sender` that the page shows, oldest first: kind, id
// and the tag (/[a-z]+-\d+/) in their text.
async function shownFrom(page, sender) {
  const all = await page.$$eval(`#log li.msg.in[data-sender="${sender}"]`, (lis) =>
    lis.reverse().map((li) => ({
      kind: li.dataset.type,
      id: li.dataset.id || null,
      text: (li.querySelector('.body') || { textContent: '' }).textContent,
    })));
  return all.map((m) => ({ ...m, tag: (/[a-z]+-\d+/.exec(m.text) || [''])[0] }));
}

// Ids "<ms>-<seq>" compared as two integers.
function idCmp(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : (as === bs ? 0 : (as < bs ? -1 : 1));
}

// Problems with `shown` (oldest first): a tag or an id twice, ids not
// increasing, tags out of the order of `want` or not in it.
function orderProblems(shown, want) {
  const problems = [];
  const tags = shown.map((m) => m.tag);
  const dup = tags.filter((t, i) => tags.indexOf(t) !== i);
  if (dup.length) problems.push(`shown twice: ${dup.join(', ')}`);
  const stray = tags.filter((t) => !want.includes(t));
  if (stray.length) problems.push(`never sent: ${stray.join(', ')}`);
  for (let i = 1; i < shown.length; i++) {
    if (!shown[i].id || !shown[i - 1].id || idCmp(shown[i - 1].id, shown[i].id) >= 0) {
      problems.push(`ids not increasing: ${shown[i - 1].id} then ${shown[i].id}`);
      break;
    }
    if (want.indexOf(shown[i - 1].tag) > want.indexOf(shown[i].tag)) {
      problems.push(`out of order: ${shown[i - 1].tag} then ${shown[i].tag}`);
      break;
    }
  }
  return problems;
}

// Until the page's `sender` messages hold every tag of `want` (or time out),
// then a moment more for late copies; returns what the page shows.
async function shownAll(page, sender, want, timeout) {
  const end = Date.now() + timeout;
  let shown = await shownFrom(page, sender);
  while (Date.now() < end && !want.every((t) => shown.some((m) => m.tag === t))) {
    await sleep(200);
    shown = await shownFrom(page, sender);
  }
  await sleep(1000);
  return shownFrom(page, sender);
}

// Until GET /api/redis-info no longer maps `user` to a worker.
async function offline(page, user) {
  await page.waitForFunction(async (u) => {
    const ri = await (await fetch('/api/redis-info', { cache: 'no-store' })).json();
    return !(ri.userProcesses && u in ri.userProcesses);
  }, user, { timeout: WAIT, polling: 200 });
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
      pages[user] = await newPage(browser, user, pageErrors);
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
        const [newA, newB] = await Promise.all([back(a, pidA, 'alice'),
                                                back(b, pidB, 'bob')]);
        await a.locator('#log li.msg.error', { hasText: 'code 1001' }).first()
          .waitFor({ timeout: WAIT });
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

    await reconnects(browser, pageErrors);
    if (HISTORY) await history(browser, pageErrors);
    else console.log('# history cases skipped: E2E_HISTORY=off');

    check(pageErrors.length === 0, 'no script errors in the pages', pageErrors.join('; '));
  } finally {
    await browser.close();
  }
}

// The page's own reconnects: the first connections are closed at once
// (1011) by a route between the page and nginx, the next one goes through;
// then the user disconnects.
async function reconnects(browser, pageErrors) {
  const FAILS = 4;
  const page = await newPage(browser, 'gina', pageErrors);
  let tries = 0;
  await page.routeWebSocket(/\/$/, (ws) => {
    if (++tries > FAILS) ws.connectToServer();
    else ws.close({ code: 1011, reason: 'test' });
  });
  await attempt('after a close the page reconnects by itself, waiting longer each time', async () => {
    await open(page, 'gina');
    const delays = await page.$$eval('#log li.msg.info[data-type="reconnect"]',
      (lis) => lis.reverse().map((li) => Number(li.dataset.delay)));
    const problems = [];
    if (delays.length !== FAILS) problems.push(`${delays.length} reconnects`);
    delays.forEach((d, i) => {
      const ceiling = 500 * 2 ** i;
      if (!(d >= ceiling / 2 && d <= ceiling)) problems.push(`wait ${i + 1}: ${d} ms`);
    });
    if (problems.length) throw new Error(`${problems.join('; ')} (waits ${delays.join(', ')})`);
    return `waits ${delays.join(', ')} ms`;
  });
  await attempt('after Disconnect it stays disconnected', async () => {
    await page.click('#disconnect');
    await page.waitForFunction(() =>
      document.getElementById('status').dataset.state === 'closed', null, { timeout: WAIT });
    await sleep(2000);
    const state = await page.$eval('#status', (e) => e.dataset.state);
    if (state !== 'closed' || tries !== FAILS + 1) {
      throw new Error(`state ${state}, ${tries} connections`);
    }
  });
  await page.context().close();
}

// The message history (ws_relay_history on in the example): carol sends,
// dave receives; erin's page sees every message twice.
async function history(browser, pageErrors) {
  const carol = await newPage(browser, 'carol', pageErrors);
  let dave = await newPage(browser, 'dave', pageErrors);
  const daveCtx = dave.context();
  await Promise.all([open(carol, 'carol'), open(dave, 'dave')]);

  let seen = null;
  await attempt('a delivered message carries its id, and the page keeps it', async () => {
    await send(carol, 'chat', 'dave', 'seen-0');
    await received(dave, 'chat', 'carol', 'seen-0');
    [seen] = (await shownFrom(dave, 'carol')).map((m) => m.id);
    if (!/^\d+-\d+$/.test(seen || '')) throw new Error(`id "${seen}"`);
    const kept = await dave.evaluate(() => Object.keys(localStorage)
      .map((k) => localStorage.getItem(k)));
    if (!kept.includes(seen)) throw new Error(`localStorage holds ${JSON.stringify(kept)}`);
    return seen;
  });

  // dave's page closes; carol sends; dave opens the page again (a new page,
  // the same browser storage) and is shown what he missed.
  const missed = ['missed-1', 'missed-2', 'missed-3', 'missed-4'];
  await dave.close();
  await attempt('sends to a user who is offline are reported queued', async () => {
    await offline(carol, 'dave');
    for (const [i, tag] of missed.entries()) {
      await send(carol, i % 2 ? 'notification' : 'chat', 'dave', tag);
    }
    const sel = '#log li.msg.info[data-target="dave"][data-queued="true"]';
    await carol.waitForFunction((q) => document.querySelectorAll(q).length >= 4,
                                sel, { timeout: WAIT });
    const heads = await carol.$$eval(sel, (lis) => lis.map((li) => li.textContent));
    if (heads.length !== 4) throw new Error(`${heads.length} queued: ${heads.join(' | ')}`);
    if (!heads.some((h) => h.includes('dave is not online: chat not delivered · queued as '))) {
      throw new Error(`shown: ${heads.join(' | ')}`);
    }
    return `${heads.length} queued`;
  });
  let apiSent = null;
  await attempt('POST /api/send-to-user to a user who is offline: queued', async () => {
    apiSent = await carol.evaluate(async () => (await fetch('/api/send-to-user', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId: 'dave', message: { text: 'missed-5' } }),
    })).json());
    if (apiSent.queued !== true || apiSent.delivered !== 0 || !/^\d+-\d+$/.test(apiSent.id)) {
      throw new Error(JSON.stringify(apiSent));
    }
    return JSON.stringify(apiSent);
  });

  dave = await newPage(browser, 'dave', pageErrors, daveCtx);
  await attempt('a page opened again shows the messages it missed, in order, once', async () => {
    await open(dave, 'dave');
    const shown = await shownAll(dave, 'carol', missed, WAIT);
    const tags = shown.map((m) => m.tag);
    if (tags.join() !== missed.join()) throw new Error(`shown ${JSON.stringify(tags)}`);
    const kinds = shown.map((m) => m.kind).join();
    if (kinds !== 'chat,notification,chat,notification') throw new Error(`kinds ${kinds}`);
    const problems = orderProblems(shown, missed);
    if (idCmp(shown[0].id, seen) <= 0) problems.push(`${shown[0].id} is not after ${seen}`);
    if (problems.length) throw new Error(problems.join('; '));
    return tags.join(', ');
  });
  await attempt('and the API\'s message, after them', async () => {
    const shown = await shownAll(dave, 'system', ['missed-5'], WAIT);
    const want = JSON.stringify([{ kind: 'notification', id: apiSent && apiSent.id,
                                   text: '{"text":"missed-5"}', tag: 'missed-5' }]);
    if (JSON.stringify(shown) !== want) throw new Error(`shown ${JSON.stringify(shown)}`);
    const last = (await shownFrom(dave, 'carol')).pop();
    if (idCmp(shown[0].id, last.id) <= 0) throw new Error(`${shown[0].id} is not after ${last.id}`);
    return shown[0].text;
  });
  await attempt('the page says recovered: true, since the last id it had shown', async () => {
    const r = dave.locator(`#log li.msg.info[data-type="resume"][data-since="${seen}"]`);
    await r.first().waitFor({ timeout: WAIT });
    if ((await r.first().getAttribute('data-recovered')) !== 'true') {
      throw new Error(`shown "${await r.first().textContent()}"`);
    }
    return (await r.first().locator('.head').textContent()).trim();
  });

  // A last id that the history does not reach back to (frank has none):
  // the page warns that messages may be missing.
  await attempt('a page whose last id the history does not reach says recovered: false', async () => {
    await dave.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.endsWith(' dave'));
      localStorage.setItem(key.replace(/ dave$/, ' frank'), '1-0');
    });
    const frank = await newPage(browser, 'frank', pageErrors, daveCtx);
    await open(frank, 'frank');
    const r = frank.locator('#log li.msg.error[data-type="resume"][data-since="1-0"]');
    await r.first().waitFor({ timeout: WAIT });
    if ((await r.first().getAttribute('data-recovered')) !== 'false') {
      throw new Error(`shown "${await r.first().textContent()}"`);
    }
    const head = (await r.first().locator('.head').textContent()).trim();
    await frank.close();
    return head;
  });

  // nginx -s reload while carol keeps sending: both pages reconnect by
  // themselves, dave's resumes, nothing is missed or shown twice.
  if (process.env.E2E_RELOAD_CMD) {
    await attempt('across nginx -s reload, with sends going on, nothing is missed or doubled', async () => {
      const pidC = Number(await carol.textContent('#process-id'));
      const pidD = Number(await dave.textContent('#process-id'));
      const sent = [];
      let n = 0;
      let stop = false;
      const sending = (async () => {
        while (!stop) {
          n++;
          const tag = `during-${n}`;
          if (await sendNow(carol, 'carol', n % 2 ? 'chat' : 'notification', 'dave', tag)) {
            sent.push(tag);
          }
          await sleep(100);
        }
      })();
      try {
        await sleep(500);
        execSync(process.env.E2E_RELOAD_CMD, { stdio: 'inherit' });
        await Promise.all([back(carol, pidC, 'carol'), back(dave, pidD, 'dave')]);
        await sleep(1000);
      } finally {
        stop = true;
        await sending;
      }
      // what the server stored: the ids carol's replies name
      const replies = (await carol.$$eval('#log li.msg.info[data-target="dave"][data-id]',
        (lis) => lis.map((li) => ({ id: li.dataset.id, queued: li.dataset.queued }))))
        .filter((r) => idCmp(r.id, seen) > 0);
      const acked = replies.map((r) => r.id);
      const missedIds = new Set(
        (await shownFrom(dave, 'carol')).filter((m) => m.tag.startsWith('missed-'))
          .map((m) => m.id));
      const ackedNow = acked.filter((id) => !missedIds.has(id));
      const shown = (await shownAll(dave, 'carol', sent, RELOAD_WAIT))
        .filter((m) => m.tag.startsWith('during-'));
      const problems = orderProblems(shown, sent);
      const lost = ackedNow.filter((id) => !shown.some((m) => m.id === id));
      if (lost.length) problems.push(`stored but not shown: ${lost.join(', ')}`);
      const closed = await dave.locator('#log li.msg.error', { hasText: 'code 1001' }).count();
      if (closed !== 1) problems.push(`dave's page saw ${closed} closes with 1001`);
      const last = dave.locator('#log li.msg.info[data-type="resume"]').first();
      if ((await last.getAttribute('data-recovered')) !== 'true') {
        problems.push(`after the reload: "${await last.textContent()}"`);
      }
      if (problems.length) throw new Error(problems.join('; '));
      const queued = replies.filter((r) => r.queued === 'true' && ackedNow.includes(r.id));
      return `${sent.length} sent, ${ackedNow.length} stored (${queued.length} queued ` +
             `while dave was away), ${shown.length} shown once, in order`;
    });
  }

  // Every message with an id reaches erin's page twice (a route between the
  // page and nginx copies it); then made-up ids test the comparison.
  const erin = await newPage(browser, 'erin', pageErrors);
  let toPage = null;
  await erin.routeWebSocket(/\/$/, (ws) => {
    const server = ws.connectToServer();
    toPage = ws;
    server.onMessage((m) => {
      ws.send(m);
      if (/"id":"/.test(String(m))) ws.send(m);
    });
  });
  await open(erin, 'erin');
  const copies = ['copy-1', 'copy-2', 'copy-3'];
  await attempt('a message that arrives twice (the same id) is shown once', async () => {
    for (const [i, tag] of copies.entries()) {
      await send(carol, i % 2 ? 'notification' : 'chat', 'erin', tag);
    }
    const shown = await shownAll(erin, 'carol', copies, WAIT);
    const problems = orderProblems(shown, copies);
    if (shown.length !== copies.length) problems.push(`${shown.length} shown`);
    if (problems.length) throw new Error(problems.join('; '));
    return shown.map((m) => m.id).join(', ');
  });
  await attempt('ids compare as two integers: <ms>-10 is after <ms>-9', async () => {
    const shown = await shownFrom(erin, 'carol');
    const ms = BigInt(shown[shown.length - 1].id.split('-')[0]) + 1n;
    const fake = (tag, id) => toPage.send(JSON.stringify(
      { type: 'chat', text: tag, sender: 'carol', timestamp: Date.now(), id }));
    fake('order-9', `${ms}-9`);
    fake('order-10', `${ms}-10`);
    fake('order-99', `${ms}-9`);
    fake('order-98', shown[0].id);
    const after = (await shownAll(erin, 'carol', ['order-9', 'order-10'], WAIT))
      .slice(copies.length).map((m) => m.tag);
    if (after.join() !== 'order-9,order-10') throw new Error(`shown ${JSON.stringify(after)}`);
    return after.join(', ');
  });

  for (const [user, page] of [['carol', carol], ['dave', dave]]) {
    await page.screenshot({ path: path.join(outDir, `demo-${user}.png`), fullPage: true });
  }
  console.log(`# screenshots: ${outDir}/demo-carol.png, demo-dave.png`);
}

main()
  .catch((e) => check(false, 'the test runs',
                      String(e.message || e).split('\n').slice(0, 3).join('\n#   ')))
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
  });
