// hako serve's web UI: one page, four views chosen by the URL's fragment:
//   #/            the VM list (live state from the event stream, CPU and memory figures polled every 2 s)
//   #/create      the create form
//   #/images      the disk images in the daemon's images/ (GET /images, polled with the list) and a create form
//   #/vm/NAME     one VM: its buttons, its serial console (xterm.js over the console WebSocket), its edit form, and
//                 with vnc on its graphical console (noVNC over the vnc WebSocket, which the daemon splices to the VM's
//                 VNC socket)
// Every API request goes to /api/v1 on the same origin. Over TCP the daemon wants the bearer token: the page asks
// for it once (kept in sessionStorage), sends it as "Authorization: Bearer" on fetch() and, because EventSource and
// WebSocket cannot set headers, as ?access_token= on the two endpoints that are one of those (the daemon accepts the
// query parameter there only: /events, /vms/NAME/console, /vms/NAME/vnc).
import RFB from "@novnc/novnc";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import "./style.css";

type Disk = { path: string; format?: string; if?: string; readonly?: boolean };
type Config = {
  cpus: number;
  memory_mib: number;
  disks: Disk[];
  firmware: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  vga: string;
  vnc: boolean;
  debug_exit: boolean;
  restart: string;
  [key: string]: unknown;
};
type Usage = { cpu_seconds: number; rss_bytes: number; sampled_at_ms: number };
type Vm = { name: string; state: string; pid: number | null; config: Config; error: string; usage: Usage | null };
type Image = { name: string; path: string; format: string; size_bytes: number; allocated_bytes: number; used_by: string[]; state: string };

const API = "/api/v1";
const TOKEN_KEY = "hako-token";
const vms = new Map<string, Vm>();
const cpuPercent = new Map<string, number>(); // from the last two usage samples of each VM
let view: { kind: "list" } | { kind: "create" } | { kind: "images" } | { kind: "vm"; name: string } = { kind: "list" };
let events: EventSource | null = null;
let consoleSession: { ws: WebSocket; term: Terminal; name: string } | null = null;
let vncSession: { rfb: any; name: string } | null = null;

// ---- DOM helpers: elements are built with textContent, never from HTML strings (names and errors are data).
type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: Child[]) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v as EventListener);
    else if (k === "value") (e as unknown as { value: string }).value = String(v);
    else if (k === "checked") (e as unknown as { checked: boolean }).checked = Boolean(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
const main = () => document.getElementById("main") as HTMLElement;

// ---- API
function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}
class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}
async function api(method: string, path: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    askToken("The daemon wants its token (the first line of serve's --token-file).");
    throw new ApiError(401, "unauthorized");
  }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  return data;
}
function withToken(path: string): string {
  if (!token()) return path;
  return path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token());
}

function setConn(text: string, ok: boolean) {
  const c = document.getElementById("conn") as HTMLElement;
  c.textContent = text;
  c.className = "conn " + (ok ? "ok" : "bad");
}

function askToken(why: string) {
  closeConsole();
  closeVnc();
  events?.close();
  events = null;
  setConn("not signed in", false);
  const input = h("input", { type: "password", id: "token", autocomplete: "current-password", size: 40 });
  const form = h("form", { class: "card", id: "token-form" },
    h("h2", {}, "Token"),
    h("p", {}, why),
    h("label", {}, "Bearer token ", input),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, (input as HTMLInputElement).value.trim());
    start();
  });
  main().replaceChildren(form);
  input.focus();
}

// ---- live state: the event stream, plus a poll for the usage figures (which change without a state change)
function connectEvents() {
  events?.close();
  const es = new EventSource(withToken(API + "/events"));
  events = es;
  es.onopen = () => setConn("live", true);
  es.onerror = () => setConn("reconnecting…", false);
  es.addEventListener("vm", (ev) => {
    const vm = JSON.parse((ev as MessageEvent).data) as Vm;
    const old = vms.get(vm.name);
    if (!vm.usage && old?.usage && vm.state === old.state) vm.usage = old.usage;
    vms.set(vm.name, vm);
    onVmChanged(vm.name);
  });
  es.addEventListener("vm-deleted", (ev) => {
    const name = JSON.parse((ev as MessageEvent).data).name as string;
    vms.delete(name);
    onVmChanged(name);
  });
}

async function pollUsage() {
  try {
    const list = (await api("GET", "/vms")) as Vm[];
    const seen = new Set<string>();
    for (const vm of list) {
      seen.add(vm.name);
      const old = vms.get(vm.name);
      if (old?.usage && vm.usage && vm.usage.sampled_at_ms > old.usage.sampled_at_ms && vm.pid === old.pid) {
        const dt = (vm.usage.sampled_at_ms - old.usage.sampled_at_ms) / 1000;
        cpuPercent.set(vm.name, (100 * (vm.usage.cpu_seconds - old.usage.cpu_seconds)) / dt);
      } else if (!vm.usage) {
        cpuPercent.delete(vm.name);
      }
      vms.set(vm.name, vm);
    }
    for (const name of [...vms.keys()]) if (!seen.has(name)) vms.delete(name);
    if (view.kind === "list") renderList();
    if (view.kind === "vm") renderVmHeader();
    if (view.kind === "images") await refreshImages();
  } catch {
    /* shown by the connection indicator or the token form */
  }
}

function onVmChanged(name: string) {
  if (view.kind === "list") renderList();
  else if (view.kind === "vm" && view.name === name) renderVmHeader();
  else if (view.kind === "images") refreshImages().catch(() => undefined); // a clone's copy starts or ends
}

// ---- formatting
function fmtMemory(bytes: number): string {
  if (bytes >= 1 << 30) return (bytes / (1 << 30)).toFixed(1) + " GiB";
  return (bytes / (1 << 20)).toFixed(1) + " MiB";
}
function fmtBytes(bytes: number): string {
  if (bytes >= 1 << 20) return fmtMemory(bytes);
  if (bytes >= 1 << 10) return (bytes / (1 << 10)).toFixed(1) + " KiB";
  return bytes + " B";
}
function usageCells(vm: Vm): [string, string] {
  if (!vm.usage) return ["–", "–"];
  const pct = cpuPercent.get(vm.name);
  return [pct === undefined ? "…" : pct.toFixed(1) + " %", fmtMemory(vm.usage.rss_bytes)];
}
function bootText(c: Config): string {
  if (c.kernel) return "kernel " + c.kernel.split("/").pop();
  return "firmware " + (c.firmware ? c.firmware.split("/").pop() : "(default)");
}

// ---- actions
const ACTIONS: { verb: string; label: string; states: string[] }[] = [
  { verb: "start", label: "Start", states: ["stopped", "crashed"] },
  { verb: "shutdown", label: "Shutdown", states: ["running"] },
  { verb: "reboot", label: "Reboot", states: ["running", "paused"] },
  { verb: "kill", label: "Kill", states: ["running", "starting", "stopping", "paused"] },
  { verb: "pause", label: "Pause", states: ["running"] },
  { verb: "resume", label: "Resume", states: ["paused"] },
];
function actionButtons(vm: Vm, onError: (msg: string) => void): HTMLElement {
  const box = h("span", { class: "actions" });
  for (const a of ACTIONS) {
    const b = h("button", {
      type: "button",
      "data-action": a.verb,
      disabled: !a.states.includes(vm.state),
      onclick: async () => {
        b.disabled = true;
        try {
          const stop = a.verb === "shutdown" || a.verb === "reboot";
          await api("POST", `/vms/${encodeURIComponent(vm.name)}/${a.verb}`, stop ? { timeout_s: 30 } : undefined);
        } catch (e) {
          onError(`${a.label} ${vm.name}: ${(e as Error).message}`);
        }
      },
    }, a.label);
    box.append(b);
  }
  box.append(cloneButton(vm, onError));
  return box;
}
/// Clone: asks for the new name; the reply comes once the disks are copied (the new VM is listed as "cloning" from
/// the event stream meanwhile).
function cloneButton(vm: Vm, onError: (msg: string) => void): HTMLElement {
  const b = h("button", {
    type: "button",
    "data-action": "clone",
    disabled: vm.state !== "stopped" && vm.state !== "crashed",
    onclick: async () => {
      const name = prompt(`Clone ${vm.name} as (its disks in images/ are copied):`, `${vm.name}-clone`)?.trim();
      if (!name) return;
      b.disabled = true;
      try {
        const made = (await api("POST", `/vms/${encodeURIComponent(vm.name)}/clone`, { name })) as Vm;
        vms.set(made.name, made);
        onVmChanged(made.name);
      } catch (e) {
        onError(`Clone ${vm.name}: ${(e as Error).message}`);
        b.disabled = false;
      }
    },
  }, "Clone");
  return b;
}
function errorLine(): [HTMLElement, (msg: string) => void] {
  const p = h("p", { class: "error", role: "alert" });
  return [p, (msg: string) => (p.textContent = msg)];
}

// ---- views
function renderList() {
  const [err, showErr] = errorLine();
  const rows = [...vms.values()].sort((a, b) => a.name.localeCompare(b.name)).map((vm) => {
    const [cpu, mem] = usageCells(vm);
    return h("tr", { "data-vm": vm.name },
      h("td", {}, h("a", { href: `#/vm/${encodeURIComponent(vm.name)}` }, vm.name)),
      h("td", { class: "state state-" + vm.state }, vm.state),
      h("td", { class: "num" }, String(vm.config.cpus)),
      h("td", { class: "num" }, vm.config.memory_mib + " MiB"),
      h("td", { class: "num cpu" }, cpu),
      h("td", { class: "num mem" }, mem),
      h("td", {}, bootText(vm.config)),
      h("td", {}, actionButtons(vm, showErr)));
  });
  const table = h("table", { id: "vm-list" },
    h("thead", {}, h("tr", {}, ...["Name", "State", "vCPUs", "Memory", "CPU", "RSS", "Boot", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, ...rows));
  main().replaceChildren(h("section", { class: "card" },
    h("h2", {}, "Virtual machines"),
    err,
    vms.size ? table : h("p", { class: "empty" }, "No VMs yet. ", h("a", { href: "#/create" }, "Create one."))));
}

function vmForm(existing: Vm | null): HTMLElement {
  const c: Partial<Config> = existing?.config ?? { cpus: 1, memory_mib: 256, disks: [], restart: "no", vga: "none" };
  const [err, showErr] = errorLine();
  const field = (label: string, input: HTMLElement, hint?: string) =>
    h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,62}", value: existing?.name ?? "" });
  if (existing) name.setAttribute("readonly", "");
  const cpus = h("input", { name: "cpus", type: "number", min: 1, max: 255, value: c.cpus ?? 1 });
  const memory = h("input", { name: "memory_mib", type: "number", min: 16, value: c.memory_mib ?? 256 });
  const bootKind = h("select", { name: "boot_kind" },
    h("option", { value: "kernel" }, "Kernel (direct boot)"),
    h("option", { value: "firmware" }, "Firmware (BIOS/UEFI)"));
  (bootKind as HTMLSelectElement).value = c.kernel || !existing ? "kernel" : "firmware";
  const kernel = h("input", { name: "kernel", value: c.kernel ?? "", placeholder: "/path/to/vmlinuz or guest.elf", size: 48 });
  const initrd = h("input", { name: "initrd", value: c.initrd ?? "", size: 48 });
  const cmdline = h("input", { name: "cmdline", value: c.cmdline ?? "", size: 48 });
  const firmware = h("input", { name: "firmware", value: c.firmware ?? "", placeholder: "empty: SeaBIOS", size: 48 });
  const disks = h("textarea", { name: "disks", rows: 3, cols: 60, placeholder: "one per line: PATH-or-IMAGE [raw|qcow2] [virtio|ide] [ro]" });
  (disks as HTMLTextAreaElement).value = (c.disks ?? [])
    .map((d) => [d.path, d.format, d.if, d.readonly ? "ro" : ""].filter(Boolean).join(" ")).join("\n");
  const vga = h("select", { name: "vga" }, h("option", { value: "none" }, "none"), h("option", { value: "std" }, "std"));
  (vga as HTMLSelectElement).value = c.vga ?? "none";
  const restart = h("select", { name: "restart" }, ...["no", "on-failure", "always"].map((r) => h("option", { value: r }, r)));
  (restart as HTMLSelectElement).value = c.restart ?? "no";
  const debugExit = h("input", { name: "debug_exit", type: "checkbox", checked: c.debug_exit ?? false });
  const vncBox = h("input", { name: "vnc", type: "checkbox", checked: c.vnc ?? false });
  const kernelFields = h("div", {}, field("Kernel", kernel), field("Initrd", initrd), field("Command line", cmdline));
  const firmwareFields = h("div", {}, field("Firmware", firmware, "an absolute path; empty: hako's default"));
  const syncBoot = () => {
    const k = (bootKind as HTMLSelectElement).value === "kernel";
    kernelFields.hidden = !k;
    firmwareFields.hidden = k;
  };
  bootKind.addEventListener("change", syncBoot);
  syncBoot();

  const form = h("form", { class: "card vm-form", id: existing ? "edit-form" : "create-form" },
    h("h2", {}, existing ? `Edit ${existing.name}` : "Create VM"),
    existing ? h("p", { class: "hint" }, "Changes apply at the next start.") : null,
    field("Name", name),
    field("vCPUs", cpus),
    field("Memory (MiB)", memory),
    field("Boot from", bootKind),
    kernelFields,
    firmwareFields,
    field("Disks", disks),
    field("VGA", vga),
    h("label", { class: "field" }, h("span", {}, "VNC display"), vncBox, h("small", {}, "needs VGA std")),
    field("Restart", restart),
    h("label", { class: "field" }, h("span", {}, "isa-debug-exit"), debugExit),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, existing ? "Save" : "Create")),
    err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = (e: HTMLElement) => (e as HTMLInputElement).value.trim();
    const diskList: Disk[] = [];
    for (const line of v(disks).split("\n").map((l) => l.trim()).filter(Boolean)) {
      const [path, ...opts] = line.split(/\s+/);
      const d: Disk = { path };
      for (const o of opts) {
        if (o === "raw" || o === "qcow2") d.format = o;
        else if (o === "virtio" || o === "ide") d.if = o;
        else if (o === "ro") d.readonly = true;
        else return showErr(`Disk "${line}": unknown option "${o}"`);
      }
      diskList.push(d);
    }
    const k = v(bootKind) === "kernel";
    const body: Record<string, unknown> = {
      cpus: Number(v(cpus)),
      memory_mib: Number(v(memory)),
      kernel: k ? v(kernel) : "",
      initrd: k ? v(initrd) : "",
      cmdline: k ? v(cmdline) : "",
      firmware: k ? "" : v(firmware),
      disks: diskList,
      vga: v(vga),
      restart: v(restart),
      debug_exit: (debugExit as HTMLInputElement).checked,
      vnc: (vncBox as HTMLInputElement).checked,
    };
    try {
      if (existing) {
        await api("PATCH", `/vms/${encodeURIComponent(existing.name)}`, body);
        showErr("");
        location.hash = `#/vm/${encodeURIComponent(existing.name)}`;
        render();
      } else {
        body.name = v(name);
        const vm = (await api("POST", "/vms", body)) as Vm;
        vms.set(vm.name, vm);
        location.hash = "#/";
      }
    } catch (e) {
      showErr((e as Error).message);
    }
  });
  return form;
}

function renderCreate() {
  main().replaceChildren(vmForm(null));
}

function renderVmHeader() {
  if (view.kind !== "vm") return;
  const box = document.getElementById("vm-header");
  if (!box) return;
  const vm = vms.get(view.name);
  if (!vm) {
    box.replaceChildren(h("p", { class: "error" }, `No VM named ${view.name}.`));
    return;
  }
  const [err, showErr] = errorLine();
  const [cpu, mem] = usageCells(vm);
  box.replaceChildren(...[
    h("h2", {}, vm.name, " ", h("span", { class: "state state-" + vm.state, id: "vm-state" }, vm.state)),
    h("p", {}, `${vm.config.cpus} vCPU · ${vm.config.memory_mib} MiB · ${bootText(vm.config)}`,
      vm.pid ? ` · pid ${vm.pid} · CPU ${cpu} · RSS ${mem}` : ""),
    vm.error ? h("p", { class: "error" }, vm.error) : null,
    actionButtons(vm, showErr),
    h("button", { type: "button", class: "secondary", onclick: () => toggleEdit(vm) }, "Edit"),
    h("button", {
      type: "button", class: "secondary danger", disabled: vm.state !== "stopped" && vm.state !== "crashed",
      onclick: async () => {
        if (!confirm(`Delete ${vm.name}?`)) return;
        try {
          await api("DELETE", `/vms/${encodeURIComponent(vm.name)}`);
          location.hash = "#/";
        } catch (e) {
          showErr((e as Error).message);
        }
      },
    }, "Delete"),
    err].filter((c): c is HTMLElement => c !== null));
  // The display connects while the VM runs (again after a disconnect: the VNC socket appears once hako runs).
  if (vm.config.vnc && (vm.state === "running" || vm.state === "paused") && !vncSession) openVnc(vm.name);
  // A console that ended with the VM's previous run reattaches when the VM runs again.
  if (consoleSession && consoleSession.name === vm.name && consoleSession.ws.readyState === WebSocket.CLOSED
      && (vm.state === "running" || vm.state === "starting"))
    openConsole(vm.name, 0);
}

function toggleEdit(vm: Vm) {
  const slot = document.getElementById("vm-edit") as HTMLElement;
  if (slot.firstChild) slot.replaceChildren();
  else slot.replaceChildren(vmForm(vm));
}

function closeVnc() {
  if (!vncSession) return;
  const s = vncSession;
  vncSession = null;
  try {
    s.rfb.disconnect();
  } catch {
    /* already gone */
  }
}

function openVnc(name: string) {
  const slot = document.getElementById("display");
  const status = document.getElementById("display-status");
  if (!slot || !status) return;
  slot.replaceChildren();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const rfb = new RFB(slot, `${proto}//${location.host}${withToken(`${API}/vms/${encodeURIComponent(name)}/vnc`)}`);
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => (status.textContent = "connected"));
  rfb.addEventListener("disconnect", () => {
    status.textContent = "disconnected";
    if (vncSession?.rfb === rfb) vncSession = null;
  });
  vncSession = { rfb, name };
}

function closeConsole() {
  if (!consoleSession) return;
  consoleSession.ws.onclose = null;
  consoleSession.ws.close();
  consoleSession.term.dispose();
  consoleSession = null;
}

function openConsole(name: string, backlog: number) {
  const slot = document.getElementById("console") as HTMLElement | null;
  if (!slot) return;
  let term = consoleSession?.name === name ? consoleSession.term : null;
  if (!term) {
    closeConsole();
    term = new Terminal({ convertEol: true, cursorBlink: true, rows: 24, cols: 100, scrollback: 5000, fontSize: 14 });
    term.open(slot);
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}${withToken(`${API}/vms/${encodeURIComponent(name)}/console?backlog=${backlog}`)}`);
  ws.binaryType = "arraybuffer";
  const t = term;
  const status = document.getElementById("console-status") as HTMLElement;
  ws.onopen = () => (status.textContent = "attached");
  ws.onmessage = (ev) => t.write(new Uint8Array(ev.data as ArrayBuffer));
  ws.onclose = (ev) => (status.textContent = ev.reason ? `detached: ${ev.reason}` : "detached");
  if (!consoleSession || consoleSession.term !== term) term.onData((d) => {
    if (consoleSession?.ws.readyState === WebSocket.OPEN) consoleSession.ws.send(new TextEncoder().encode(d));
  });
  consoleSession = { ws, term, name };
}

function renderVm(name: string) {
  closeConsole(); // a fresh terminal and display in the fresh page
  closeVnc();
  const vnc = vms.get(name)?.config.vnc;
  main().replaceChildren(...[
    h("section", { class: "card", id: "vm-header" }),
    h("div", { id: "vm-edit" }),
    vnc ? h("section", { class: "card" },
      h("h3", {}, "Display ", h("small", { id: "display-status" }, "")),
      h("div", { id: "display", class: "display" })) : null,
    h("section", { class: "card" },
      h("h3", {}, "Serial console ", h("small", { id: "console-status" }, "")),
      h("div", { id: "console", class: "console" }))].filter((c): c is HTMLElement => c !== null));
  renderVmHeader();
  openConsole(name, 64 * 1024);
}

async function refreshImages() {
  const body = document.getElementById("image-rows");
  if (!body) return;
  const list = (await api("GET", "/images")) as Image[];
  body.replaceChildren(...list.map((img) => h("tr", { "data-image": img.name },
    h("td", {}, img.name),
    h("td", {}, img.format),
    h("td", { class: "num" }, fmtBytes(img.size_bytes)),
    h("td", { class: "num" }, fmtBytes(img.allocated_bytes)),
    h("td", {}, img.used_by.join(", ") || "–"),
    h("td", { class: "state state-" + img.state }, img.state))));
  const empty = document.getElementById("images-empty") as HTMLElement;
  empty.hidden = list.length > 0;
}

function renderImages() {
  const [err, showErr] = errorLine();
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,62}", placeholder: "data.qcow2" });
  const format = h("select", { name: "format" }, h("option", { value: "qcow2" }, "qcow2"), h("option", { value: "raw" }, "raw"));
  const size = h("input", { name: "size_mib", type: "number", min: 1, value: 1024, required: true });
  const field = (label: string, input: HTMLElement) => h("label", { class: "field" }, h("span", {}, label), input);
  const form = h("form", { class: "card vm-form", id: "image-form" },
    h("h2", {}, "Create image"),
    field("Name", name), field("Format", format), field("Size (MiB)", size),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Create")),
    err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/images", {
        name: (name as HTMLInputElement).value.trim(),
        format: (format as HTMLSelectElement).value,
        size_mib: Number((size as HTMLInputElement).value),
      });
      showErr("");
      (name as HTMLInputElement).value = "";
      await refreshImages();
    } catch (e) {
      showErr((e as Error).message);
    }
  });
  const table = h("table", { id: "image-list" },
    h("thead", {}, h("tr", {}, ...["Name", "Format", "Size", "On disk", "Used by", "State"].map((t) => h("th", {}, t)))),
    h("tbody", { id: "image-rows" }));
  main().replaceChildren(
    h("section", { class: "card" }, h("h2", {}, "Disk images"), table, h("p", { class: "empty", id: "images-empty", hidden: true }, "No images yet.")),
    form);
  refreshImages().catch((e) => showErr((e as Error).message));
}

function render() {
  const hash = location.hash || "#/";
  const m = /^#\/vm\/(.+)$/.exec(hash);
  const next: typeof view = m ? { kind: "vm", name: decodeURIComponent(m[1]) }
    : hash === "#/create" ? { kind: "create" } : hash === "#/images" ? { kind: "images" } : { kind: "list" };
  if (next.kind !== "vm" || view.kind !== "vm" || view.name !== next.name) {
    closeConsole();
    closeVnc();
  }
  view = next;
  if (view.kind === "list") renderList();
  else if (view.kind === "create") renderCreate();
  else if (view.kind === "images") renderImages();
  else renderVm(view.name);
}

async function start() {
  try {
    const list = (await api("GET", "/vms")) as Vm[];
    vms.clear();
    for (const vm of list) vms.set(vm.name, vm);
  } catch {
    return; // the token form is up, or the daemon is away
  }
  connectEvents();
  render();
}

window.addEventListener("hashchange", () => {
  if (document.getElementById("token-form")) return;
  render();
});
setInterval(() => {
  if (!document.getElementById("token-form")) pollUsage();
}, 2000);
start();
