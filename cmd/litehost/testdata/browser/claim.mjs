// Claims a temporary project through the claim page in Debian's Chromium, by keyboard.
// Usage: node claim.mjs <claimUrl> <email> <codeUrl>
// codeUrl answers the latest sign-in code mailed to <email> (the Go test reads it from its SMTP
// server). Exits non-zero with a message on the first failed expectation.
import { chromium } from 'playwright-core';

const [claimUrl, email, codeUrl] = process.argv.slice(2);
if (!claimUrl || !email || !codeUrl) {
  console.error('usage: node claim.mjs <claimUrl> <email> <codeUrl>');
  process.exit(2);
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

// focused describes the focused element: "INPUT#email", "BUTTON", "A".
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
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(new URL(claimUrl).origin)) outside.push(r.url()); });

  const resp = await page.goto(claimUrl);
  expect(resp.status() === 200, `GET claim page: ${resp.status()}`);
  expect(await page.getAttribute('html', 'lang') === 'en', 'html has no lang="en"');
  expect(await page.locator('h1').innerText() === 'Claim your project', 'heading of the claim page');

  // Focus order: the project's address link, then the e-mail field, then its button.
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'A', `1st Tab focuses ${await focused(page)}, want the project link`);
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'INPUT#email', `2nd Tab focuses ${await focused(page)}, want the e-mail field`);
  // The field is reachable by its label (label for= is tied to the input).
  expect(await page.getByLabel('E-mail address').count() === 1, 'e-mail field has no label');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'BUTTON', `3rd Tab focuses ${await focused(page)}, want the submit button`);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  expect(await page.locator('h1').innerText() === 'Enter your code', `after the e-mail: ${await page.locator('h1').innerText()}`);
  expect(await focused(page) === 'INPUT#code', `code page focuses ${await focused(page)}, want the code field (autofocus)`);
  const res = await fetch(codeUrl);
  expect(res.ok, `code endpoint: ${res.status}`);
  const code = (await res.text()).trim();
  expect(/^\d{6}$/.test(code), `code endpoint gave ${code}`);

  // A wrong code first: the error is announced and tied to the field.
  const wrong = String((Number(code) + 1) % 1000000).padStart(6, '0');
  await page.keyboard.type(wrong);
  await page.keyboard.press('Tab');
  expect(await focused(page) === 'BUTTON', `Tab from the code field focuses ${await focused(page)}, want the button`);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  const alert = page.locator('#code-error[role="alert"]');
  expect(await alert.count() === 1, 'wrong code: no role="alert" error');
  const describedBy = await page.getAttribute('#code', 'aria-describedby');
  expect(describedBy.split(' ').includes('code-error'), `code field aria-describedby="${describedBy}"`);
  expect(await page.getAttribute('#code', 'aria-invalid') === 'true', 'code field not aria-invalid');

  await page.locator('#code').focus();
  await page.keyboard.type(code);
  await page.keyboard.press('Tab');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  const heading = await page.locator('h1').innerText();
  expect(heading === 'Project claimed', `after the code: "${heading}": ${await page.locator('main').innerText()}`);
  const text = await page.locator('main').innerText();
  expect(text.includes(email), `success page does not name ${email}: ${text}`);

  expect(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
  expect(outside.length === 0, `requests outside the origin: ${outside.join(', ')}`);
  console.log('claimed: ' + text.replace(/\s+/g, ' '));
} finally {
  await browser.close();
}
