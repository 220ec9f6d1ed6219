// Completes the OAuth sign-in page (e-mail → code → consent) in Debian's Chromium, by keyboard,
// and follows the redirect to the client's loopback redirect URI.
// Usage: node oauth.mjs <authorizeUrl> <email> <codeUrl> <redirectUri>
// codeUrl answers the latest sign-in code mailed to <email>. Prints the final URL's query.
import { chromium } from 'playwright-core';

const [authorizeUrl, email, codeUrl, redirectUri] = process.argv.slice(2);
if (!authorizeUrl || !email || !codeUrl || !redirectUri) {
  console.error('usage: node oauth.mjs <authorizeUrl> <email> <codeUrl> <redirectUri>');
  process.exit(2);
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const focused = (page) => page.evaluate(() => {
  const e = document.activeElement;
  return e ? e.tagName + (e.id ? '#' + e.id : '') : '';
});

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
});
try {
  const context = await browser.newContext({ javaScriptEnabled: false }); // the page needs none
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  const origin = new URL(authorizeUrl).origin;
  const client = new URL(redirectUri).origin;
  const outside = [];
  page.on('request', (r) => {
    const o = new URL(r.url()).origin;
    if (o !== origin && o !== client) outside.push(r.url());
  });

  const resp = await page.goto(authorizeUrl);
  expect(resp.status() === 200, `GET authorize: ${resp.status()}`);
  expect(await page.getAttribute('html', 'lang') === 'en', 'html has no lang="en"');
  expect(await page.locator('h1').innerText() === 'Sign in to Litehost', 'heading of the sign-in page');

  await page.keyboard.press('Tab');
  expect(await focused(page) === 'INPUT#email', `1st Tab focuses ${await focused(page)}, want the e-mail field`);
  expect(await page.getByLabel('E-mail address').count() === 1, 'e-mail field has no label');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'BUTTON', `Tab focuses ${await focused(page)}, want the submit button`);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  expect(await page.locator('h1').innerText() === 'Enter your code', `after the e-mail: ${await page.locator('h1').innerText()}`);
  expect(await focused(page) === 'INPUT#code', `code page focuses ${await focused(page)}, want the code field`);
  const res = await fetch(codeUrl);
  expect(res.ok, `code endpoint: ${res.status}`);
  const code = (await res.text()).trim();
  expect(/^\d{6}$/.test(code), `code endpoint gave ${code}`);
  await page.keyboard.type(code);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  const heading = await page.locator('h1').innerText();
  expect(/^Allow .+ to manage your Litehost projects$/.test(heading), `consent heading: "${heading}"`);
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'BUTTON', `Tab on the consent page focuses ${await focused(page)}, want Allow`);
  expect((await page.evaluate(() => document.activeElement.textContent)).trim() === 'Allow', 'first button is not Allow');
  await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.keyboard.press('Enter')]);

  const final = new URL(page.url());
  expect(final.searchParams.get('code'), `redirect without a code: ${final.href}`);
  expect(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
  expect(outside.length === 0, `requests outside the server and the client: ${outside.join(', ')}`);
  console.log(final.search);
} finally {
  await browser.close();
}
