/**
 * The web explorer in a real browser: Debian's Chromium driven by playwright-core (which
 * downloads no browser), against the built page served by `btmsim serve`. Every wait is on a
 * DOM condition (the page's data-status / data-runs attributes), never a sleep.
 *
 * Skipped, with a message, when /usr/bin/chromium is missing and CI is not set; under CI they
 * must run (`.ci/run` installs chromium with apt-get). Screenshots: test-results/web/.
 * BTMSIM_DOCS_SCREENSHOT=1 also refreshes docs/explorer.png.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bin, built, root, startServe } from './serve-helper.js';

const CHROMIUM = process.env.BTMSIM_CHROMIUM ?? '/usr/bin/chromium';
const inCi = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());
const haveChromium = existsSync(CHROMIUM);
const shots = join(root, 'test-results/web');

/** Why the browser tests cannot run here, if they cannot. */
const missing = !haveChromium
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set BTMSIM_CHROMIUM)`
  : !built ? 'dist/ or dist-web/ is missing (npm run build)' : null;
if (missing !== null && !inCi) {
  console.warn(`test/web/explorer.test.ts: browser tests SKIPPED: ${missing}; with CI=true this is a failure.`);
}

// Under CI a missing browser or build is a failed test, not a silent skip.
describe.runIf(missing !== null && inCi)('web explorer in Chromium (CI)', () => {
  it('has Chromium and the built page', () => {
    throw new Error(`CI is set but the browser tests cannot run: ${missing}. .ci/run installs chromium with apt-get.`);
  });
});

const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
const RUNNING_WITH_PROGRESS =
  `document.querySelector('.page')?.dataset.status === 'running' && Number(document.querySelector('#progress')?.value) > 0`;

describe.runIf(missing === null)('web explorer in Chromium', () => {
  let server: ChildProcess | undefined;
  let url = '';
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'btmsim-web-'));

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    ({ child: server, url } = await startServe());
    // launch() gives Chromium a new empty profile (--user-data-dir) of its own and --headless
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill();
    rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(async () => {
    pageErrors.length = 0;
    ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => {
    await ctx.close();
    expect(pageErrors).toEqual([]);
  });

  const runs = async (p: Page = page) => Number(await p.locator('.page').getAttribute('data-runs'));
  /** Waits until the page has completed more than `after` runs and is idle. */
  const waitDone = (after: number, p: Page = page) => p.waitForFunction(
    `(() => { const e = document.querySelector('.page'); return e && e.dataset.status === 'done' && Number(e.dataset.runs) > ${after}; })()`,
    undefined, { timeout: 45_000 });
  const waitStatus = (s: string, p: Page = page) => p.waitForSelector(`.page[data-status="${s}"]`, { timeout: 45_000 });
  const cell = (row: string, policy: string, p: Page = page) =>
    p.locator(`#comparison tr[data-row="${row}"] td[data-policy="${policy}"]`).textContent();
  const tableText = (p: Page = page) => p.locator('#comparison').innerText();
  /** What `btmsim run` says about this text saved as thread-2020.yaml (without the `btmsim: `). */
  const cliMessage = (text: string): string => {
    const f = join(tmp, 'thread-2020.yaml');
    writeFileSync(f, text);
    const r = cli('run', f);
    expect(r.status).toBe(2);
    return r.stderr.trim().replace(/^btmsim: /, '').replaceAll(f, 'thread-2020.yaml');
  };

  it('loads, runs the built-in scenario in a worker and shows the same numbers as `btmsim run`; exports JSON and HTML', async () => {
    await page.goto(url);
    await waitDone(0);
    expect(await page.locator('h1').textContent()).toBe('btmsim explorer');
    expect(await page.locator('#comparison thead th').allTextContents())
      .toEqual(['metric', 'ptm', 'btm-2020', 'btm-split', 'btm-kvm-pinned', 'btm-s2aset']);
    expect(await page.locator('.chart').count()).toBe(3);
    expect(page.url()).toMatch(/#s=thread-2020$/);

    const ref = JSON.parse(cli('run', '--json').stdout) as { results: { policy: string; metrics: { collateral: { total: number }; translation: { walkAccesses: number } } }[] };
    for (const r of ref.results) {
      expect(await cell('collateral invalidations', r.policy)).toBe(r.metrics.collateral.total.toLocaleString('en-US'));
      expect(await cell('walk memory accesses', r.policy)).toBe(r.metrics.translation.walkAccesses.toLocaleString('en-US'));
    }
    await page.screenshot({ path: join(shots, 'default.png') });
    if (process.env.BTMSIM_DOCS_SCREENSHOT === '1') copyFileSync(join(shots, 'default.png'), join(root, 'docs/explorer.png'));

    // JSON export: byte for byte `btmsim run --json` on the same YAML
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
    expect(dl.suggestedFilename()).toBe('thread-2020-seed1.json');
    const yamlFile = join(tmp, 'thread-2020.yaml');
    writeFileSync(yamlFile, await page.locator('#yaml').inputValue());
    expect(readFileSync((await dl.path())!, 'utf8')).toBe(cli('run', yamlFile, '--json').stdout);
    // HTML export: one self-contained file with the table and the charts
    const [dh] = await Promise.all([page.waitForEvent('download'), page.click('#export-html')]);
    expect(dh.suggestedFilename()).toBe('thread-2020-seed1.html');
    const html = readFileSync((await dh.path())!, 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain('thread-2020');
    expect(html).toContain('  devicesPerVm: 4\n'); // the scenario text
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script\b[^>]*src=|<link\b[^>]*stylesheet/);
    writeFileSync(join(shots, 'report.html'), html);
    const report = await ctx.newPage();
    await report.setContent(html);
    expect(await report.locator('svg').count()).toBeGreaterThan(0);
    await report.screenshot({ path: join(shots, 'report.png'), fullPage: true });
  });

  it('every control has a label, Tab reaches them in order, and the focus is visible', async () => {
    await page.goto(url);
    await waitDone(0);
    const unnamed = await page.evaluate(`[...document.querySelectorAll('input, select, textarea, button')]
      .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (e.tagName === 'BUTTON' && e.textContent.trim())))
      .map((e) => e.outerHTML.slice(0, 80))`);
    expect(unnamed).toEqual([]);
    const order: string[] = [];
    const outlines = new Set<string>();
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const [id, outline] = (await page.evaluate(`[document.activeElement.id || document.activeElement.tagName, getComputedStyle(document.activeElement).outlineStyle]`)) as [string, string];
      order.push(id);
      if (['scenario', 'vfs', 'yaml', 'tlb'].includes(id)) outlines.add(outline);
    }
    const pos = (id: string) => order.indexOf(id);
    for (const id of ['scenario', 'vmid-8', 'vfs', 'pol-ptm', 'pol-btm-s2aset', 'tlb', 'unmap', 'duration', 'yaml']) expect(pos(id), id).toBeGreaterThanOrEqual(0);
    expect(pos('scenario')).toBeLessThan(pos('vfs'));
    expect(pos('duration')).toBeLessThan(pos('yaml'));
    expect([...outlines]).toEqual(['solid']);
    // the VMID radios work from the keyboard too
    await page.focus('#vmid-8');
    const n = await runs();
    await page.keyboard.press('ArrowRight');
    expect(await page.locator('#vmid-16').isChecked()).toBe(true);
    await waitDone(n);
    expect(await page.locator('#yaml').inputValue()).toMatch(/cpu:\n(?:.*\n)*?\s+vmidBits: 16\n/);
  });

  it('changing the VFs slider (keyboard) changes the YAML, the URL and the numbers', async () => {
    await page.goto(url);
    await waitDone(0);
    const before = await tableText();
    const dmaBefore = await cell('DMA translations', 'ptm');
    const n = await runs();
    await page.focus('#vfs');
    await page.keyboard.press('ArrowRight');
    expect(await page.locator('#vfs-value').textContent()).toBe('5 VFs');
    await waitDone(n);
    expect(await page.locator('#yaml').inputValue()).toContain('  devicesPerVm: 5\n');
    expect(page.url()).toContain('vfs=5');
    expect(await cell('DMA translations', 'ptm')).not.toBe(dmaBefore);
    expect(await tableText()).not.toBe(before);
    await page.screenshot({ path: join(shots, 'vfs-5.png') });
  });

  it('bad YAML shows the CLI\'s message with its line, highlighted in the editor', async () => {
    await page.goto(url);
    await waitDone(0);
    const text = (await page.locator('#yaml').inputValue()).replace('cpu:\n  count: 8\n  vmidBits: 8', 'cpu:\n  count: 8\n  vmidBits: 12');
    const line = text.split('\n').findIndex((l) => l === '  vmidBits: 12') + 1;
    await page.fill('#yaml', text);
    await waitStatus('invalid');
    const issue = page.locator('#yaml-issues .issue');
    expect(await issue.count()).toBe(1);
    expect(await issue.textContent()).toBe(cliMessage(text));
    expect(await issue.textContent()).toContain(`thread-2020.yaml:${line}:13: cpu.vmidBits: expected 8 or 16, got 12`);
    expect(await page.locator(`.gutter .ln.err[data-line="${line}"]`).count()).toBe(1);
    expect(await page.locator('.gutter .ln.err').count()).toBe(1);
    expect(await page.locator(`.band[data-line="${line}"]`).isVisible()).toBe(true);
    expect(await page.locator('#yaml').getAttribute('aria-invalid')).toBe('true');
    // the issue is a button: Enter on it puts the caret on the line
    await issue.focus();
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('yaml');
    const caret = Number(await page.evaluate('document.activeElement.selectionStart'));
    expect(text.slice(0, caret).split('\n').length).toBe(line);
    await page.screenshot({ path: join(shots, 'bad-yaml.png') });

    // a syntax error is located too
    const syntax = 'seed: 1\ncpu: { count: 8\n';
    const expected = cliMessage(syntax);
    expect(expected).toMatch(/^thread-2020\.yaml:2:6: /);
    await page.fill('#yaml', syntax);
    await page.waitForFunction(`document.querySelector('#yaml-issues .issue')?.textContent === ${JSON.stringify(expected)}`, undefined, { timeout: 15_000 });
    expect(await page.locator('.gutter .ln.err').getAttribute('data-line')).toBe('2');
  });

  it('a long run shows progress, keeps the page responsive, and can be cancelled', async () => {
    await page.goto(url);
    await waitDone(0);
    await page.focus('#duration');
    await page.keyboard.press('End'); // the longest duration
    const ms = await page.locator('#duration-value').textContent();
    expect(ms).toBe('5000 ms');
    await page.waitForFunction(RUNNING_WITH_PROGRESS, undefined, { timeout: 45_000 });
    expect(await page.locator('#status').textContent()).toMatch(/^Running thread-2020 \(5000 ms\): ptm \(1 of 5\), \d+(\.\d)?%/);
    // the page answers while the worker computes
    const t0 = Date.now();
    await page.evaluate('1 + 1');
    expect(Date.now() - t0).toBeLessThan(1000);
    await page.screenshot({ path: join(shots, 'running.png') });
    expect(await page.locator('#cancel').isEnabled()).toBe(true);
    await page.click('#cancel');
    await waitStatus('cancelled');
    expect(await page.locator('#status').textContent()).toContain('Run cancelled');
    expect(await page.locator('#cancel').isDisabled()).toBe(true);
    expect(await page.locator('.stale-note').textContent()).toContain('cancelled');
    await page.screenshot({ path: join(shots, 'cancelled.png') });

    // a fresh worker takes the next run; Escape cancels too
    const n = await runs();
    await page.focus('#duration');
    await page.keyboard.press('Home'); // 1 ms
    await waitDone(n);
    expect(await page.locator('#status').textContent()).toMatch(/^Done: thread-2020, seed 1, 1 ms simulated/);
    await page.keyboard.press('End');
    await page.waitForFunction(RUNNING_WITH_PROGRESS, undefined, { timeout: 45_000 });
    await page.keyboard.press('Escape');
    await waitStatus('cancelled');
  });

  it('a shared URL restores the edited YAML, the controls and the results', async () => {
    await page.goto(url);
    await waitDone(0);
    let n = await runs();
    const text = (await page.locator('#yaml').inputValue()).replace('name: thread-2020', 'name: shared-link');
    await page.fill('#yaml', text);
    await waitDone(n);
    n = await runs();
    await page.check('#vmid-16');
    await page.uncheck('#pol-btm-s2aset');
    await page.focus('#tlb');
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(`location.hash.includes('tlb=1024') && location.hash.includes('vmid=16')`, undefined, { timeout: 10_000 });
    await waitDone(n);
    const shared = page.url();
    expect(shared).toMatch(/#s=thread-2020&vmid=16&pol=[a-z0-9,-]+&tlb=1024&y=z\./);
    const yaml = await page.locator('#yaml').inputValue();
    const table = await tableText();

    const other = await ctx.newPage();
    await other.goto(shared);
    await waitDone(0, other);
    expect(await other.locator('#yaml').inputValue()).toBe(yaml);
    expect(await other.locator('#vmid-16').isChecked()).toBe(true);
    expect(await other.locator('#pol-btm-s2aset').isChecked()).toBe(false);
    expect(await other.locator('#pol-ptm').isChecked()).toBe(true);
    expect(await other.locator('#tlb-value').textContent()).toBe('1,024 entries');
    expect(await other.locator('#scenario-about').textContent()).toContain('Edited from thread-2020.yaml');
    expect(await tableText(other)).toBe(table);
    expect(await other.locator('#comparison caption').textContent()).toContain('shared-link');
    await other.screenshot({ path: join(shots, 'restored.png') });

    // a plain link to another shipped scenario with one control changed
    const third = await ctx.newPage();
    await third.goto(`${url}#s=sva-btm&ms=5`);
    await waitDone(0, third);
    expect(await third.locator('#scenario').inputValue()).toBe('sva-btm');
    expect(await third.locator('#duration-value').textContent()).toBe('5 ms');
    expect(await third.locator('#comparison thead th').allTextContents()).toEqual(['metric', 'ptm', 'btm-2020']);
  });
});
