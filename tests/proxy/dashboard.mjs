// Loads the proxy's dashboard (GET /ui) in headless Chromium through
// puppeteer-core and prints one JSON object with what the page shows,
// what /metrics says at the same moment, and any console errors; the C
// test (tests/check_proxy.c) judges it. Saves screenshots at desktop and
// phone widths.
// Environment: PROXY_URL, ADMIN_KEY, CHROMIUM (the browser binary),
// PROFILE (a fresh user-data dir), SHOT, SHOT_PHONE (PNG paths).
import puppeteer from 'puppeteer-core';

const base = process.env.PROXY_URL;
const key = process.env.ADMIN_KEY;
const out = { console_errors: [], page_errors: [], failed_requests: [] };

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  // Root in a container needs --no-sandbox; the rest keep an offline
  // machine from waiting on network services at start-up.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', `--user-data-dir=${process.env.PROFILE}`],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('requestfailed', (r) => out.failed_requests.push(r.url()));
  // As a browser user does: HTTP Basic with the admin key as password.
  await page.authenticate({ username: 'admin', password: key });
  await page.setViewport({ width: 1280, height: 900 });
  const res = await page.goto(`${base}/ui`, { waitUntil: 'load', timeout: 30000 });
  out.status = res.status();
  out.csp = res.headers()['content-security-policy'] || '';
  // Live: wait until the charts have at least two samples (a line drawn).
  await page.waitForFunction(
    () => document.querySelector('#chart-req path') && document.querySelector('#saved-usd').dataset.value !== undefined,
    { timeout: 30000, polling: 200 });
  // Let one more refresh land so that the page and /metrics agree.
  await new Promise((r) => setTimeout(r, 1500));
  const shown = await page.evaluate(() => {
    const g = (id) => document.getElementById(id);
    return {
      hit_ratio_text: g('hit-ratio').textContent,
      hit_ratio: Number(g('hit-ratio').dataset.value),
      saved_usd_text: g('saved-usd').textContent,
      saved_usd: Number(g('saved-usd').dataset.value),
      saved_tokens: Number(g('saved-tokens').dataset.value),
      saved_seconds: Number(g('saved-time').dataset.value),
      models: [...document.querySelectorAll('#models tr')].map((tr) => tr.textContent),
      tenants: [...document.querySelectorAll('#tenants tr')].map((tr) => tr.textContent),
      backend: g('backend').textContent,
      errors: [...document.querySelectorAll('#errors tr')].map((tr) => tr.textContent),
      paths: document.querySelectorAll('svg path').length,
      live: g('updated').textContent,
    };
  });
  Object.assign(out, shown);
  const m = await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${key}` } });
  const text = await m.text();
  const sum = (name) => text.split('\n').filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const hits = sum('llmcache_cache_hits_total'), misses = sum('llmcache_cache_misses_total');
  out.metrics = { hits, misses, hit_ratio: hits + misses ? hits / (hits + misses) : 0,
    saved_usd: sum('llmcache_saved_usd_total'), saved_tokens: sum('llmcache_saved_tokens_total'),
    saved_seconds: sum('llmcache_saved_seconds_total') };
  await page.screenshot({ path: process.env.SHOT, fullPage: true });
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true });
  await new Promise((r) => setTimeout(r, 1200));
  out.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await page.screenshot({ path: process.env.SHOT_PHONE, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
