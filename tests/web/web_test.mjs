// hako serve's web UI in a real browser: playwright-core (web/node_modules) driving Debian's Chromium headless
// against a daemon on TCP with a token, with the poweroff guest (READY, then waits for the ACPI power button).
//   - the API over TCP refuses requests without the token (plain, event stream, console), the page itself loads;
//   - the page asks for the token; with it, the empty VM list;
//   - the create form makes a VM, which appears in the list as stopped;
//   - Start in the list: the row turns running (event stream) and shows CPU and RSS figures;
//   - the VM page shows the guest's serial output (READY) in xterm.js over the console WebSocket;
//   - Reboot: the guest powers off on the button, the daemon starts it again (a new process), the page says running
//     and the terminal shows the guest's READY a second time;
//   - Shutdown: the guest sees the power button (its output in the terminal), the VM stops, the list says stopped;
//   - the edit form changes the memory size (checked through the API);
//   - the Disk images page: the create form makes a qcow2 image, which is listed with its format and size;
//   - Clone in the list (the name asked in a prompt) copies the VM with its disk: the clone is listed as stopped,
//     its disk is listed on the images page as used by it;
//   - a VM with std VGA and VNC (the vga guest drawing a 640x480 pattern): its page shows the pattern in noVNC
//     through the daemon's vnc WebSocket (refused without the token); Kill ends it;
//   - a screenshot of each page: a PNG of the viewport's size, decoded by the browser, with many distinct colours.
// Usage: node web_test.mjs HAKO GUEST_DIR WEB_DIR SOURCE_DIR [CHROMIUM]
// (HAKO_WEB_SCREENSHOTS=DIR keeps the screenshots there; otherwise they are removed unless a check failed.)
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

const [hako, guests, webDir, sourceDir, chromiumPath = "/usr/bin/chromium"] = process.argv.slice(2).map((a) => a && resolve(a));
if (!sourceDir) {
  console.error("usage: node web_test.mjs HAKO GUEST_DIR WEB_DIR SOURCE_DIR [CHROMIUM]");
  process.exit(2);
}
const { chromium } = createRequire(join(sourceDir, "web", "package.json"))("playwright-core");
const WAIT = 60_000; // a generous bound for each wait, never a measured time

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
  return ok;
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, what) {
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  check(false, `${what} (gave up waiting)`);
  return null;
}

/// PNG header checks here; the pixels are decoded by the browser (an <img> from a data: URL drawn on a canvas).
async function checkScreenshot(page, png, name, shots) {
  writeFileSync(join(shots, `${name}.png`), png);
  const signature = png.subarray(0, 8).toString("hex") === "89504e470d0a1a0a";
  const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
  const vp = page.viewportSize();
  check(signature && png.subarray(12, 16).toString() === "IHDR" && width === vp.width && height === vp.height,
    `${name}: a PNG of ${vp.width}x${vp.height} (${width}x${height}, ${png.length} bytes)`);
  const stats = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { w: c.width, h: c.height, colours: colours.size };
  }, png.toString("base64"));
  check(stats.w === width && stats.h === height && stats.colours >= 8,
    `${name}: the PNG decodes to ${stats.w}x${stats.h} with ${stats.colours} distinct colours (not blank)`);
}

async function httpStatus(url, headers = {}) {
  const ctl = new AbortController();
  const r = await fetch(url, { headers, signal: ctl.signal });
  ctl.abort(); // the event stream does not end
  return r.status;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), "hako-web."));
  const shots = process.env.HAKO_WEB_SCREENSHOTS ? resolve(process.env.HAKO_WEB_SCREENSHOTS) : join(tmp, "screenshots");
  mkdirSync(shots, { recursive: true });
  const token = randomBytes(16).toString("hex");
  writeFileSync(join(tmp, "token"), token + "\n", { mode: 0o600 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const daemon = spawn(hako, ["serve", "--socket", join(tmp, "hako.sock"), "--state-dir", join(tmp, "state"),
    "--listen", `127.0.0.1:${port}`, "--token-file", join(tmp, "token"), "--web-dir", webDir],
    { stdio: ["ignore", "ignore", "pipe"] });
  let daemonLog = "";
  daemon.stderr.on("data", (d) => (daemonLog += d));
  let browser = null;
  const auth = { Authorization: "Bearer " + token };
  try {
    await waitFor(async () => (await httpStatus(`${base}/api/v1/version`, auth)) === 200, "the daemon answers on TCP");

    // The token is still needed for the API; the page is public.
    check(await httpStatus(`${base}/api/v1/vms`) === 401, "GET /api/v1/vms without the token is 401");
    check(await httpStatus(`${base}/api/v1/events`) === 401, "the event stream without the token is 401");
    check(await httpStatus(`${base}/api/v1/vms?access_token=${token}`) === 401, "the token in the query of /vms is 401");
    check(await httpStatus(`${base}/api/v1/vms/x/console`) === 401, "the console without the token is 401");
    check(await httpStatus(`${base}/`) === 200, "GET / (the UI) is 200 without the token");

    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && pageErrors.push(m.text()));
    page.setDefaultTimeout(WAIT);

    await page.goto(base + "/");
    await page.waitForSelector("#token-form");
    check(true, "the page asks for the token");
    await checkScreenshot(page, await page.screenshot(), "1-token", shots);
    await page.fill("#token", token);
    await page.click("#token-form button[type=submit]");
    await page.waitForSelector("text=No VMs yet");
    await page.waitForSelector(".conn.ok");
    check(true, "with the token: the empty VM list, the event stream live");
    await checkScreenshot(page, await page.screenshot(), "2-empty-list", shots);

    // Create.
    await page.click("#nav-create");
    await page.waitForSelector("#create-form");
    await page.fill("#create-form input[name=name]", "web1");
    await page.fill("#create-form input[name=memory_mib]", "64");
    await page.fill("#create-form input[name=kernel]", join(guests, "poweroff.elf"));
    await page.fill("#create-form input[name=cmdline]", "button=1");
    await page.check("#create-form input[name=debug_exit]");
    await checkScreenshot(page, await page.screenshot(), "3-create-form", shots);
    await page.click("#create-form button[type=submit]");
    const row = "#vm-list tr[data-vm=web1]";
    await page.waitForSelector(`${row} td.state-stopped`);
    check(true, "the new VM is in the list, stopped");
    const created = await (await fetch(`${base}/api/v1/vms/web1`, { headers: auth })).json();
    check(created.config.memory_mib === 64 && created.config.cmdline === "button=1" && created.config.debug_exit === true
      && created.config.kernel === join(guests, "poweroff.elf"), "the API has the definition the form sent");

    // Start from the list; the state and the figures come live.
    await page.click(`${row} button[data-action=start]`);
    await page.waitForSelector(`${row} td.state-running`);
    check(true, "Start: the row says running");
    const rss = await waitFor(async () => {
      const t = await page.textContent(`${row} td.mem`);
      return /MiB|GiB/.test(t) ? t : null;
    }, "the row shows the VM's resident memory");
    const cpu = await waitFor(async () => {
      const t = await page.textContent(`${row} td.cpu`);
      return / %$/.test(t) ? t : null;
    }, "the row shows the VM's CPU percentage");
    check(rss && cpu, `the row shows CPU ${cpu} and RSS ${rss}`);
    await checkScreenshot(page, await page.screenshot(), "4-list-running", shots);

    // The VM page: the serial console in xterm.js.
    await page.click(`${row} a`);
    await page.waitForSelector("#console .xterm-rows");
    const sawReady = await waitFor(async () => (await page.textContent("#console .xterm-rows")).includes("READY"),
      "the terminal shows the guest's READY");
    check(sawReady, "the VM page's terminal shows the guest's serial output (READY)");
    check((await page.textContent("#vm-state")) === "running", "the VM page says running");
    const header = await page.textContent("#vm-header");
    check(!/null|undefined|NaN/.test(header), `the VM page's header has no placeholder values (${header})`);
    await checkScreenshot(page, await page.screenshot(), "5-vm-console", shots);

    // Reboot: the power button, the guest powers off, the daemon starts it again; the same terminal shows it boot.
    const before = await (await fetch(`${base}/api/v1/vms/web1`, { headers: auth })).json();
    await page.click("#vm-header button[data-action=reboot]");
    const rebooted = await waitFor(async () => {
      const vm = await (await fetch(`${base}/api/v1/vms/web1`, { headers: auth })).json();
      return vm.state === "running" && vm.pid !== before.pid ? vm : null;
    }, "the reboot brings web1 back with a new process");
    check(rebooted && rebooted.last_exit && rebooted.last_exit.status === 0 && rebooted.restarts === 0,
      `Reboot: the guest powered off on the button and the daemon started it again (${JSON.stringify(rebooted && rebooted.last_exit)})`);
    await page.waitForSelector("#vm-state.state-running");
    const readyTwice = await waitFor(async () =>
      ((await page.textContent("#console .xterm-rows")).match(/READY/g) || []).length >= 2,
      "the terminal shows READY again after the reboot");
    check(readyTwice, "Reboot: the VM page says running and the terminal shows the guest's READY a second time");

    // Shutdown: the power button; the guest says so and powers off.
    await page.click("#vm-header button[data-action=shutdown]");
    await page.waitForSelector("#vm-state.state-stopped");
    check(true, "Shutdown: the VM page says stopped");
    const sawButton = await waitFor(async () => {
      const t = await page.textContent("#console .xterm-rows");
      return t.slice(t.lastIndexOf("READY")).includes("power button pressed"); // this run's, not the reboot's
    }, "the terminal shows the guest's power button message");
    check(sawButton, "the terminal shows the guest handling the power button");
    const stopped = await (await fetch(`${base}/api/v1/vms/web1`, { headers: auth })).json();
    check(stopped.state === "stopped" && stopped.last_exit && stopped.last_exit.status === 0,
      `the VM powered off cleanly (${JSON.stringify(stopped.last_exit)})`);

    // Edit.
    await page.click("#vm-header button:has-text('Edit')");
    await page.waitForSelector("#edit-form");
    await page.fill("#edit-form input[name=memory_mib]", "96");
    await checkScreenshot(page, await page.screenshot(), "6-edit-form", shots);
    await page.click("#edit-form button[type=submit]");
    const edited = await waitFor(async () => {
      const vm = await (await fetch(`${base}/api/v1/vms/web1`, { headers: auth })).json();
      return vm.config.memory_mib === 96 ? vm : null;
    }, "the edit reaches the API");
    check(edited && edited.config.cmdline === "button=1", "the edit form changed the memory and kept the rest");

    // Back to the list.
    await page.click("nav a[href='#/']");
    await page.waitForSelector(`${row} td.state-stopped`);
    check((await page.textContent(`${row} td:nth-child(4)`)).startsWith("96"), "the list shows stopped and the new memory");
    await checkScreenshot(page, await page.screenshot(), "7-list-stopped", shots);

    // Disk images: the page lists the daemon's images/, its form creates one.
    await page.click("#nav-images");
    await page.waitForSelector("#image-form");
    await page.fill("#image-form input[name=name]", "web-data.qcow2");
    await page.fill("#image-form input[name=size_mib]", "16");
    await page.selectOption("#image-form select[name=format]", "qcow2");
    await page.click("#image-form button[type=submit]");
    const imageRow = "#image-list tr[data-image='web-data.qcow2']";
    await page.waitForSelector(imageRow);
    const imageText = await page.textContent(imageRow);
    check(/qcow2/.test(imageText) && /16\.0 MiB/.test(imageText) && /ready/.test(imageText),
      `the form's image is listed: qcow2, 16 MiB, ready (${imageText})`);
    await checkScreenshot(page, await page.screenshot(), "8-images", shots);

    // Clone from the list: the prompt asks for the name; the clone copies web1's disk in images/.
    const attach = await fetch(`${base}/api/v1/vms/web1`, { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ disks: [{ path: "web-data.qcow2", format: "qcow2" }] }) });
    check(attach.status === 200, `web1 gets the image as its disk (${attach.status})`);
    await page.click("nav a[href='#/']");
    page.once("dialog", (d) => d.accept("web1-copy"));
    await page.click(`${row} button[data-action=clone]`);
    await page.waitForSelector("#vm-list tr[data-vm='web1-copy'] td.state-stopped");
    const copy = await (await fetch(`${base}/api/v1/vms/web1-copy`, { headers: auth })).json();
    check(copy.config.memory_mib === 96 && copy.config.disks.length === 1
      && copy.config.disks[0].path.endsWith("/images/web1-copy-disk0.qcow2"),
      `Clone: the clone is listed, stopped, with web1's definition and its own copy of the disk (${copy.config.disks.map((d) => d.path)})`);
    await page.click("#nav-images");
    const copyRow = "#image-list tr[data-image='web1-copy-disk0.qcow2']";
    await page.waitForSelector(copyRow);
    check((await page.textContent(copyRow)).includes("web1-copy"), "the images page lists the clone's disk as used by it");

    // The graphical console: the vga guest draws a 640x480 pattern on std VGA (vbe32); noVNC shows it through
    // the daemon's vnc WebSocket.
    const json = { ...auth, "Content-Type": "application/json" };
    const gfx = await fetch(`${base}/api/v1/vms`, { method: "POST", headers: json, body: JSON.stringify({
      name: "gfx", kernel: join(guests, "vga.elf"), cmdline: "mode=vbe32", vga: "std", vnc: true, debug_exit: true,
      memory_mib: 64 }) });
    check(gfx.status === 201, `a VM with std VGA and VNC is created (${gfx.status})`);
    check(await httpStatus(`${base}/api/v1/vms/gfx/vnc`) === 401, "the vnc WebSocket without the token is 401");
    check((await fetch(`${base}/api/v1/vms/gfx/start`, { method: "POST", headers: auth })).status === 200, "gfx starts");
    await page.goto(base + "/#/vm/gfx");
    await page.waitForSelector("#display canvas");
    await page.waitForSelector("#display-status:text('connected')");
    check(true, "the VM page's display connects (noVNC over the vnc WebSocket)");
    await waitFor(async () => (await (await fetch(`${base}/api/v1/vms/gfx/console-log`, { headers: auth })).text())
      .includes("vga: ready"), "the vga guest has drawn its pattern (vga: ready)");
    const colours = await waitFor(async () => {
      const n = await page.evaluate(() => {
        const c = document.querySelector("#display canvas");
        if (!c || c.width < 640 || c.height < 480) return 0;
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        // The pattern is r = x & 0xff, g = y & 0xff, b = (x ^ y) & 0xff; the encoding may be lossy (Tight/JPEG),
        // so the far corner is compared loosely: it must be drawn too, not only the top rows.
        const i = 4 * (470 * c.width + 600);
        const want = [600 & 0xff, 470 & 0xff, (600 ^ 470) & 0xff];
        if (want.some((v, k) => Math.abs(d[i + k] - v) > 48)) return 0;
        const set = new Set();
        for (let i = 0; i < d.length; i += 4 * 13) set.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return set.size;
      });
      return n >= 1000 ? n : null;
    }, "the display shows the guest's pattern");
    check(colours, `the noVNC canvas shows the guest's 640x480 pattern (${colours} distinct colours)`);
    await checkScreenshot(page, await page.screenshot(), "9-vm-display", shots);
    await page.click("#vm-header button[data-action=kill]");
    await page.waitForSelector("#vm-state:is(.state-stopped, .state-crashed)");
    check(true, "Kill: the VM page says it ended");

    check(pageErrors.length === 0, `no errors in the page (${pageErrors.join("; ")})`);
  } catch (e) {
    check(false, `the browser run: ${e && e.stack ? e.stack : e}`);
  } finally {
    if (browser) await browser.close();
    for (const name of ["web1", "web1-copy", "gfx"]) {
      try {
        const vm = await (await fetch(`${base}/api/v1/vms/${name}`, { headers: auth })).json();
        if (vm.pid) process.kill(vm.pid, "SIGKILL");
      } catch {
        /* no VM or no daemon */
      }
    }
    daemon.kill("SIGTERM");
    await new Promise((r) => (daemon.exitCode !== null ? r() : daemon.on("exit", r)));
    if (failures.length) {
      console.log(`----- daemon log -----\n${daemonLog.slice(-6000)}\nscreenshots in ${shots}`);
    } else {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  console.log(`${failures.length} failure(s)`);
  process.exit(failures.length ? 1 : 0);
}

main();
