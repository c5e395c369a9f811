// Loads a DHAT JSON file into dh_view.html and prints the page's text;
// used by scripts/check-dhat-viewer.sh (argv: JSON file, screenshot path).

const { chromium } = require('playwright-core');
(async () => {
  const file = process.argv[2];
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto('file:///usr/libexec/valgrind/dh_view.html');
  await page.setInputFiles('input[type=file]', file);
  await page.waitForTimeout(1500);
  const text = await page.innerText('body');
  await page.screenshot({ path: process.argv[3] });
  console.log(text);
  await browser.close();
})();
